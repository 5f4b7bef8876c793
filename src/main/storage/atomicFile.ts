import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Temp files live beside their target (same filesystem, so rename is atomic) and are easy to recognise. */
export const TEMP_SUFFIX = '.tmp';

/** User data is private to the user: folders rwx------, files rw-------. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p whose new folders are private (existing ones keep their mode; the user-data root is tightened at start-up). */
export function mkdirPrivate(dir: string): Promise<string | undefined> {
  return mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Replaces `path` with `data` so that a reader sees either the old file or the new one, never half of
 * either: write a temp file, flush it to disk, then rename it over the target. On any failure the temp
 * file is removed and the old file is untouched.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  try {
    const handle = await open(temp, 'wx', PRIVATE_FILE_MODE);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export function isTempFile(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_SUFFIX);
}

/** Start-up: temp files left in `dir` by writes a crash or kill cut short; returns how many were removed. */
export async function removeTempFiles(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const temps = names.filter(isTempFile);
  await Promise.all(temps.map((name) => rm(join(dir, name), { force: true })));
  return temps.length;
}
