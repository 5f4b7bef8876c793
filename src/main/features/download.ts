import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CodedError } from '../../shared/result.js';
import { formatBytes } from '../../shared/units.js';
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../storage/atomicFile.js';
import type { Progress } from '../../shared/progress.js';

/** The hub; `HF_ENDPOINT` (huggingface_hub's own variable) points the app at a mirror. */
export const HF_ENDPOINT = 'https://huggingface.co';

/** A cut connection is resumed (an HTTP Range request from the bytes on disk) this many times per file. */
const RESUMES_PER_FILE = 5;

/** The files of a checkpoint the importer reads; everything else in a repo (README, .bin, ...) is skipped. */
export function isCheckpointFile(name: string): boolean {
  if (name.includes('/')) return false;
  return (
    name.endsWith('.safetensors') ||
    [
      'config.json',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'preprocessor_config.json',
      'chat_template.json',
      'chat_template.jinja',
      'generation_config.json',
    ].includes(name)
  );
}

/** One file of a repo as the hub lists it (`/api/models/<repo>?blobs=true`): its size and what its bytes must hash to. */
export interface HubFile {
  name: string;
  size?: number;
  /** Large (LFS) files: the sha256 of the content. */
  sha256?: string;
  /** Small files: git's blob id, sha1 of "blob <size>\0" + the content. */
  blobId?: string;
}

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; size?: number };
}

/** The repo's files with sizes and hashes. */
export async function listRepo(repoId: string, endpoint = HF_ENDPOINT, signal?: AbortSignal): Promise<HubFile[]> {
  const listing = await request(`${endpoint}/api/models/${repoId}?blobs=true`, repoId, signal);
  const { siblings = [] } = (await listing.json()) as { siblings?: Sibling[] };
  return siblings.map((s) => ({
    name: s.rfilename,
    size: s.lfs?.size ?? s.size,
    sha256: s.lfs?.sha256,
    blobId: s.lfs ? undefined : s.blobId,
  }));
}

/** What to fetch: the named files (a GGUF repo's one quantization and its mmproj), or every checkpoint file. */
export function chooseFiles(repoId: string, listed: HubFile[], wanted?: string[]): HubFile[] {
  if (wanted) {
    const missing = wanted.filter((name) => !listed.some((f) => f.name === name));
    if (missing.length) throw new CodedError('not-found', `${repoId} has no ${missing.join(', ')}: the repository has changed.`);
    return wanted.map((name) => listed.find((f) => f.name === name)!);
  }
  const files = listed.filter((f) => isCheckpointFile(f.name));
  if (!files.some((f) => f.name === 'config.json') || !files.some((f) => f.name.endsWith('.safetensors'))) {
    throw new CodedError(
      'invalid-request',
      `${repoId} has no config.json and safetensors weights: not a checkpoint this app can download by name. ` +
        'For a GGUF repository, pick it in the catalogue or download its .gguf and mmproj files, then import the folder.',
    );
  }
  return files;
}

/**
 * Downloads a Hugging Face repository's checkpoint files (or `wanted` ones) into `destDir`, each from
 * `/<repo>/resolve/main/<file>`, streaming to `<file>.part` with progress in bytes. A cut connection is
 * resumed from the bytes already on disk (a Range request), a cancelled download resumes the same way the
 * next time, and each file lands under its name only once its size and hash match the hub's listing.
 */
export async function downloadCheckpoint(
  repoId: string,
  destDir: string,
  onProgress: (progress: Progress) => void,
  signal: AbortSignal,
  endpoint = HF_ENDPOINT,
  wanted?: string[],
): Promise<string> {
  const files = chooseFiles(repoId, await listRepo(repoId, endpoint, signal), wanted);
  await mkdirPrivate(destDir);
  const total = files.reduce((sum, f) => sum + (f.size ?? 0), 0);
  let finished = 0;
  for (const [index, file] of files.entries()) {
    const report = (received: number, note = '') =>
      onProgress({
        done: finished + received,
        total,
        message: `Downloading ${file.name} (${index + 1} of ${files.length}): ${formatBytes(finished + received)} of ${formatBytes(total)}${note}`,
      });
    await downloadFile(`${endpoint}/${repoId}/resolve/main/${file.name}`, repoId, file, join(destDir, file.name), signal, report);
    finished += file.size ?? 0;
  }
  onProgress({ done: total, total, message: `Downloaded ${files.length} files (${formatBytes(total)}), checked against the hub's hashes` });
  return destDir;
}

/** One file: skipped when already in place (it was checked before it got its name), resumed from `.part`, then checked. */
async function downloadFile(
  url: string,
  repoId: string,
  file: HubFile,
  target: string,
  signal: AbortSignal,
  report: (received: number, note?: string) => void,
): Promise<void> {
  if (await sizeOf(target)) return report(file.size ?? 0);
  const partial = `${target}.part`;
  for (let resumes = 0; ; resumes++) {
    const have = await sizeOf(partial);
    if (file.size !== undefined && have === file.size) break;
    try {
      await fetchInto(url, repoId, partial, have, signal, report);
      if (file.size === undefined || (await sizeOf(partial)) === file.size) break;
      if (resumes >= RESUMES_PER_FILE) throw new CodedError('internal', `${file.name} keeps arriving short; try again later.`);
    } catch (err) {
      if (signal.aborted) throw new CodedError('cancelled', 'Download cancelled. Download it again to resume where it stopped.');
      if (err instanceof CodedError || resumes >= RESUMES_PER_FILE) throw err;
      report(await sizeOf(partial), ' (connection lost, resuming)');
      await sleep(Math.min(8000, 250 * 2 ** resumes));
    }
  }
  await checkHash(file, partial);
  await rename(partial, target);
}

/** Appends the bytes after the first `have` to `partial` (a Range request; a server that ignores it starts the file over). */
async function fetchInto(
  url: string,
  repoId: string,
  partial: string,
  have: number,
  signal: AbortSignal,
  report: (received: number) => void,
): Promise<void> {
  const response = await request(url, repoId, signal, have ? { range: `bytes=${have}-` } : {});
  let received = response.status === 206 ? have : 0;
  report(received);
  const counted = async function* (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      received += chunk.length;
      report(received);
      yield chunk;
    }
  };
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  const out = createWriteStream(partial, { mode: PRIVATE_FILE_MODE, flags: response.status === 206 ? 'a' : 'w' });
  await pipeline(body, counted, out, { signal });
}

/** The downloaded bytes against the listing: sha256 for LFS files, git's blob sha1 for small ones. A mismatch deletes the file. */
async function checkHash(file: HubFile, partial: string): Promise<void> {
  const expected = file.sha256 ?? file.blobId;
  if (!expected) return;
  const hash = createHash(file.sha256 ? 'sha256' : 'sha1');
  if (!file.sha256) hash.update(`blob ${await sizeOf(partial)}\0`);
  for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  if (hash.digest('hex') === expected) return;
  await rm(partial, { force: true });
  throw new CodedError(
    'internal',
    `${file.name} did not match the hub's checksum (the download was damaged or the server sent other bytes); it was deleted. Download again.`,
  );
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

async function request(url: string, repoId: string, signal?: AbortSignal, headers: Record<string, string> = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow', headers });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new CodedError(
      'engine-unavailable',
      `Cannot reach ${new URL(url).host}: you seem to be offline. Import a checkpoint folder you already have instead.`,
    );
  }
  if (response.status === 401 || response.status === 403)
    throw new CodedError('forbidden', `${repoId} is gated or private; download it with your account, then import the folder.`);
  if (response.status === 404) throw new CodedError('not-found', `No model "${repoId}" on Hugging Face.`);
  if (!response.ok || !response.body)
    throw new CodedError('internal', `Hugging Face answered ${response.status} for ${new URL(url).pathname}.`);
  return response;
}
