// onnxruntime-node's CUDA provider libraries for Linux x64, fetched from NuGet and verified.
// The package's own script (script/install.js) does nothing for ONNXRUNTIME_NODE_INSTALL=cuda12 in
// 1.30 (its flag parser returns undefined for it) and checks no hash, so this does the same job:
// resolve the package in the NuGet v3 feed, download the .nupkg while hashing it, compare with the
// SHA512 the feed's catalog publishes, then extract the files the package's install-metadata.js names.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw } from 'node:zlib';

export const NUGET_INDEX = 'https://api.nuget.org/v3/index.json';

/** What onnxruntime-node itself would install on `platform`: NuGet id, version, and file -> path in the package. */
export function cudaManifest(pkgDir, platform = `${process.platform}/${process.arch}`) {
  const metadata = createRequire(join(pkgDir, 'package.json'))('./script/install-metadata.js');
  const files = metadata.manifests[`${platform}:cuda12`];
  if (!files) return null;
  const [{ package: packageKey }] = Object.values(files);
  const { name, versions } = metadata.packages[packageKey];
  return {
    id: name.toLowerCase(),
    version: versions[0].version.toLowerCase(),
    binDir: join(pkgDir, 'bin', 'napi-v6', platform),
    files: Object.entries(files).map(([file, { path }]) => ({ target: file.replace(/^\.\//, ''), path })),
  };
}

async function getJson(url, signal) {
  const response = await fetch(url, { signal });
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
  return response.json();
}

/** The package's download URL and the SHA512 (base64) its catalog entry records. */
async function resolvePackage(index, { id, version }, signal) {
  const { resources } = await getJson(index, signal);
  const base = resources.find((r) => r['@type'] === 'PackageBaseAddress/3.0.0')?.['@id'];
  const registrations = resources.find((r) => String(r['@type']).startsWith('RegistrationsBaseUrl'))?.['@id'];
  if (!base || !registrations) throw new Error(`${index} lists no package base address or registrations`);
  const leaf = await getJson(`${registrations}${id}/${version}.json`, signal);
  const entry = typeof leaf.catalogEntry === 'string' ? await getJson(leaf.catalogEntry, signal) : leaf.catalogEntry;
  if (entry?.packageHashAlgorithm !== 'SHA512' || typeof entry.packageHash !== 'string') {
    throw new Error(`the catalog entry of ${id} ${version} has no SHA512 package hash`);
  }
  return { url: `${base}${id}/${version}/${id}.${version}.nupkg`, sha512: entry.packageHash };
}

async function download(url, path, signal) {
  const response = await fetch(url, { signal });
  if (!response.ok || !response.body) throw new Error(`${url} answered HTTP ${response.status}`);
  const hash = createHash('sha512');
  const hashing = new Transform({
    transform(chunk, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body), hashing, createWriteStream(path), { signal });
  return hash.digest('base64');
}

/** Central directory of a zip (a .nupkg): name -> {method, compressedSize, headerOffset}. No zip64: NuGet packages stay under 4 GB. */
async function zipEntries(file) {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const tail = Buffer.alloc(Math.min(size, 65_557));
    await handle.read(tail, 0, tail.length, size - tail.length);
    const end = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (end < 0) throw new Error('the package is not a zip file');
    const count = tail.readUInt16LE(end + 10);
    const dirSize = tail.readUInt32LE(end + 12);
    const dirOffset = tail.readUInt32LE(end + 16);
    const dir = Buffer.alloc(dirSize);
    await handle.read(dir, 0, dirSize, dirOffset);
    const entries = new Map();
    for (let p = 0, i = 0; i < count; i++) {
      if (dir.readUInt32LE(p) !== 0x02014b50) throw new Error('the package zip has a damaged directory');
      const nameLength = dir.readUInt16LE(p + 28);
      const extra = dir.readUInt16LE(p + 30) + dir.readUInt16LE(p + 32);
      const name = dir.toString('utf8', p + 46, p + 46 + nameLength);
      entries.set(name, {
        method: dir.readUInt16LE(p + 10),
        compressedSize: dir.readUInt32LE(p + 20),
        headerOffset: dir.readUInt32LE(p + 42),
      });
      p += 46 + nameLength + extra;
    }
    return { handle, entries };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

async function extract(handle, entry, target) {
  const header = Buffer.alloc(30);
  await handle.read(header, 0, 30, entry.headerOffset);
  const start = entry.headerOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  const raw = handle.createReadStream({ start, end: start + entry.compressedSize - 1, autoClose: false });
  const partial = `${target}.partial`;
  if (entry.method === 8) await pipeline(raw, createInflateRaw(), createWriteStream(partial, { mode: 0o755 }));
  else if (entry.method === 0) await pipeline(raw, createWriteStream(partial, { mode: 0o755 }));
  else throw new Error(`unsupported zip compression method ${entry.method}`);
  await rename(partial, target);
}

/**
 * Downloads, verifies and installs the CUDA provider libraries into onnxruntime-node's bin folder.
 * Resolves to the installed paths; rejects with a one-line reason (nothing half-installed is left).
 */
export async function installCudaProvider({ pkgDir, index = NUGET_INDEX, binDir, signal, log = () => {} }) {
  const manifest = cudaManifest(pkgDir);
  if (!manifest) throw new Error('onnxruntime-node has no CUDA provider for this platform');
  const dest = binDir ?? manifest.binDir;
  const { url, sha512 } = await resolvePackage(index, manifest, signal);
  const temp = await mkdtemp(join(tmpdir(), 'transprune-cuda-'));
  try {
    const nupkg = join(temp, 'package.nupkg');
    log(`downloading ${url}`);
    const actual = await download(url, nupkg, signal);
    // The file name, not the whole URL: the reason must fit on the postinstall's one line.
    const file = new URL(url).pathname.split('/').at(-1);
    if (actual !== sha512) throw new Error(`${file} does not match the SHA512 its NuGet catalog entry records; nothing was installed`);
    const { handle, entries } = await zipEntries(nupkg);
    try {
      const missing = manifest.files.filter((f) => !entries.has(f.path)).map((f) => f.path);
      if (missing.length) throw new Error(`the package lacks ${missing.join(', ')}`);
      await mkdir(dest, { recursive: true });
      const installed = [];
      for (const { target, path } of manifest.files) {
        await extract(handle, entries.get(path), join(dest, target));
        installed.push(join(dest, target));
      }
      return installed;
    } finally {
      await handle.close();
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
