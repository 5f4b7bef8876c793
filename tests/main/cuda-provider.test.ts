import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cudaManifest, installCudaProvider } from '../../tools/setup/cuda-provider.mjs';

/**
 * The CUDA provider install against a local stand-in for the NuGet v3 feed (no network here): the
 * package onnxruntime-node names is resolved, downloaded, checked against the catalog's SHA512 and
 * its libraries extracted; a tampered package or an unreachable feed installs nothing and the
 * postinstall prints one line. The real download from nuget.org is the same code with the real index.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const pkgDir = join(ROOT, 'node_modules', 'onnxruntime-node');
const manifest = cudaManifest(pkgDir, 'linux/x64')!;
const root = mkdtempSync(join(tmpdir(), 'tp-nuget-'));
let server: Server;
let feed = '';
let nupkg: Buffer;
let served: Buffer;

beforeAll(async () => {
  // The package as NuGet would ship it, zipped by Info-ZIP's zip (not by the code under test).
  const content = join(root, 'content');
  for (const { path } of manifest.files) {
    mkdirSync(join(content, dirname(path)), { recursive: true });
    writeFileSync(join(content, path), `ELF stand-in for ${path}\n`.repeat(200));
  }
  execFileSync('zip', ['-q', '-r', join(root, 'pkg.nupkg'), '.'], { cwd: content });
  nupkg = readFileSync(join(root, 'pkg.nupkg'));
  served = nupkg;
  server = createServer((req, res) => {
    const json = (value: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    const { id, version } = manifest;
    if (req.url === '/v3/index.json') {
      return json({
        resources: [
          { '@id': `${feed}/flat/`, '@type': 'PackageBaseAddress/3.0.0' },
          { '@id': `${feed}/reg/`, '@type': 'RegistrationsBaseUrl/3.6.0' },
        ],
      });
    }
    if (req.url === `/reg/${id}/${version}.json`) return json({ catalogEntry: `${feed}/catalog/${id}.${version}.json` });
    if (req.url === `/catalog/${id}.${version}.json`) {
      return json({ packageHashAlgorithm: 'SHA512', packageHash: createHash('sha512').update(nupkg).digest('base64') });
    }
    if (req.url === `/flat/${id}/${version}/${id}.${version}.nupkg`) return res.writeHead(200).end(served);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  feed = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe('CUDA provider install from a NuGet feed', () => {
  it('names the package and files onnxruntime-node itself lists', () => {
    expect(manifest.id).toBe('microsoft.ml.onnxruntime.gpu.linux');
    expect(manifest.files.map((f) => f.target)).toContain('libonnxruntime_providers_cuda.so');
  });

  it('downloads, verifies the SHA512 and extracts the libraries', async () => {
    const binDir = join(root, 'bin-ok');
    const installed = await installCudaProvider({ pkgDir, index: `${feed}/v3/index.json`, binDir });
    expect(installed.map((p: string) => p.slice(binDir.length + 1)).sort()).toEqual(manifest.files.map((f) => f.target).sort());
    for (const { target, path } of manifest.files)
      expect(readFileSync(join(binDir, target))).toEqual(readFileSync(join(root, 'content', path)));
  });

  it('installs nothing from a package that does not match its catalog hash', async () => {
    served = Buffer.from(nupkg);
    served[served.length >> 1] ^= 0xff;
    const binDir = join(root, 'bin-tampered');
    await expect(installCudaProvider({ pkgDir, index: `${feed}/v3/index.json`, binDir })).rejects.toThrow(
      /does not match the SHA512 its NuGet catalog entry records; nothing was installed/,
    );
    expect(existsSync(binDir)).toBe(false);
    served = nupkg;
  });

  it('postinstall: one line when the feed cannot be reached, when it installs, and when the package is tampered with; exit 0 each time', async () => {
    const postinstall = (index: string, binDir: string) =>
      promisify(execFile)(process.execPath, [join(ROOT, 'tools', 'setup', 'optional-binaries.mjs')], {
        cwd: ROOT,
        env: { ...process.env, CI: '', TRANSPRUNE_NUGET_INDEX: index, TRANSPRUNE_ORT_BIN_DIR: binDir },
      });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await postinstall(`http://127.0.0.1:${closedPort}/v3/index.json`, join(root, 'bin-none'));
    const cudaLines = (unreachable.stdout + unreachable.stderr).split('\n').filter((l) => /CUDA/.test(l));
    expect(cudaLines).toEqual([
      expect.stringMatching(
        /^warning: onnxruntime-node CUDA provider download from NuGet skipped \(.*ECONNREFUSED.*\); inference runs on CPU/,
      ),
    ]);
    const ok = await postinstall(`${feed}/v3/index.json`, join(root, 'bin-postinstall'));
    expect((ok.stdout + ok.stderr).split('\n').filter((l) => /CUDA/.test(l))).toEqual([
      `onnxruntime-node CUDA provider installed (${manifest.files.length} files, SHA512 verified)`,
    ]);
    // The whole reason fits on the line: which file, and that nothing was installed.
    served = Buffer.from(nupkg);
    served[served.length >> 1] ^= 0xff;
    const tampered = await postinstall(`${feed}/v3/index.json`, join(root, 'bin-postinstall-tampered'));
    served = nupkg;
    expect((tampered.stdout + tampered.stderr).split('\n').filter((l) => /CUDA/.test(l))).toEqual([
      expect.stringMatching(
        /^warning: onnxruntime-node CUDA provider download from NuGet skipped \(microsoft\.ml\.onnxruntime\.gpu\.linux\.[\d.]+\.nupkg does not match the SHA512 its NuGet catalog entry records; nothing was installed\); inference runs on CPU/,
      ),
    ]);
  }, 400_000);
});
