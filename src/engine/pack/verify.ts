// Checking a pack's weight files against the sha256 the importer recorded (manifest.weightsSha256):
// a zero-filled or truncated layer file loads fine and answers wrongly, silently.

import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DamagedFile, PackVerification } from '../../shared/ipc-features.js';
import type { Progress } from '../../shared/progress.js';
import { sha256File, writeFileAtomic } from '../io/files.js';
import { loadManifest } from './manifest.js';

/** Size and mtime of each weight file when it last matched its hash: unchanged files need no re-hash. */
const VERIFIED_FILE = 'verified.json';

type Stamps = Record<string, { size: number; mtimeMs: number }>;

async function stampsOf(dir: string, files: string[]): Promise<Stamps> {
  const stamps: Stamps = {};
  for (const file of files) {
    const s = await stat(join(dir, file)).catch(() => null);
    if (s) stamps[file] = { size: s.size, mtimeMs: s.mtimeMs };
  }
  return stamps;
}

/** True when some weight file changed (or was never checked) since the last verification that passed. */
export async function needsVerification(dir: string): Promise<boolean> {
  const files = Object.keys((await loadManifest(dir)).weightsSha256);
  const recorded = await readFile(join(dir, VERIFIED_FILE), 'utf8').then(
    (text) => JSON.parse(text) as Stamps,
    () => null,
  );
  if (!recorded) return true;
  const now = await stampsOf(dir, files);
  return files.some((f) => recorded[f]?.size !== now[f]?.size || recorded[f]?.mtimeMs !== now[f]?.mtimeMs);
}

/**
 * Hashes every weight file of the pack in `dir`, reporting bytes hashed as progress. When all match,
 * remembers them as verified; when one does not, forgets that, so the next load checks again.
 */
export async function verifyPack(
  dir: string,
  options: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {},
): Promise<PackVerification> {
  const expected = (await loadManifest(dir)).weightsSha256;
  const files = Object.keys(expected);
  const stamps = await stampsOf(dir, files);
  const total = Object.values(stamps).reduce((sum, s) => sum + s.size, 0);
  const damaged: DamagedFile[] = [];
  let done = 0;
  for (const file of files) {
    options.signal?.throwIfAborted();
    options.onProgress?.({ done, total, message: `verifying ${file}` });
    // A file removed or unreadable while the check runs counts as missing, like one absent from the start.
    const actual = stamps[file] ? await sha256File(join(dir, file)).catch(() => null) : null;
    if (actual === null) damaged.push({ file, reason: 'missing' });
    else if (actual !== expected[file]) damaged.push({ file, reason: 'changed' });
    done += stamps[file]?.size ?? 0;
  }
  options.onProgress?.({ done: total, total, message: 'checked' });
  if (damaged.length === 0) await writeFileAtomic(join(dir, VERIFIED_FILE), JSON.stringify(stamps));
  else await rm(join(dir, VERIFIED_FILE), { force: true });
  return { ok: damaged.length === 0, damaged, files: files.length, bytes: total, checkedAt: Date.now() };
}

/** One damaged file in words: what is wrong with it. */
export function describeDamage({ file, reason }: DamagedFile): string {
  return reason === 'missing'
    ? `${file} is missing or unreadable`
    : `${file} does not match its recorded sha256 (damaged or changed since the import)`;
}
