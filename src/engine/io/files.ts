import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `data` to a temp file beside `path`, then renames it over: readers see the old file or the new one, never half. */
export async function writeFileAtomic(path: string, data: string | Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { flush: true });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Hex sha256 of a file, streamed so multi-gigabyte weights never sit in memory. */
export async function sha256File(path: string, hash = createHash('sha256')): Promise<string> {
  await feedFile(path, hash);
  return hash.digest('hex');
}

/** Hex sha256 over several files in the given order (each file's name and bytes), streamed; `onFile` before each. */
export async function sha256Files(
  paths: { label: string; path: string }[],
  options: { signal?: AbortSignal; onFile?: (index: number, label: string) => void } = {},
): Promise<string> {
  const hash = createHash('sha256');
  for (const [index, { label, path }] of paths.entries()) {
    options.signal?.throwIfAborted();
    options.onFile?.(index, label);
    hash.update(`${label}\0`);
    await feedFile(path, hash);
  }
  return hash.digest('hex');
}

export function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function feedFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
}

/** Flushes a file's or a folder's contents (a folder: its entries) to disk. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
