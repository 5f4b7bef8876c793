// Checking a pack's weight files against the sha256 the importer recorded (manifest.weightsSha256):
// a zero-filled or truncated layer file loads fine and answers wrongly, silently.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, writeFileAtomic } from '../io/files.js';
import { loadManifest } from './manifest.js';

/** Size and mtime of each weight file when it last matched its hash: unchanged files need no re-hash. */
const VERIFIED_FILE = 'verified.json';

export interface VerifyProgress {
  /** 0..1 of the bytes hashed. */
  fraction: number;
  file: string;
}

export interface VerifyResult {
  ok: boolean;
  /** One line per weight file that is missing or differs from its recorded hash. */
  problems: string[];
  files: number;
  bytes: number;
}

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

/** Hashes every weight file of the pack in `dir`; when all match, remembers them as verified. */
export async function verifyPack(
  dir: string,
  options: { onProgress?: (p: VerifyProgress) => void; signal?: AbortSignal } = {},
): Promise<VerifyResult> {
  const expected = (await loadManifest(dir)).weightsSha256;
  const files = Object.keys(expected);
  const stamps = await stampsOf(dir, files);
  const total = Object.values(stamps).reduce((sum, s) => sum + s.size, 0);
  const problems: string[] = [];
  let done = 0;
  for (const file of files) {
    options.signal?.throwIfAborted();
    options.onProgress?.({ fraction: total ? done / total : 0, file });
    if (!stamps[file]) {
      problems.push(`${file} is missing`);
      continue;
    }
    const actual = await sha256File(join(dir, file));
    if (actual !== expected[file]) problems.push(`${file} does not match its recorded sha256 (damaged or changed since the import)`);
    done += stamps[file].size;
  }
  options.onProgress?.({ fraction: 1, file: '' });
  if (problems.length === 0) await writeFileAtomic(join(dir, VERIFIED_FILE), JSON.stringify(stamps));
  return { ok: problems.length === 0, problems, files: files.length, bytes: total };
}
