// The model store: one folder per pack, named by the pack id. Folders starting with "." are
// imports in progress and never listed.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifest, type PackManifest } from './manifest.js';

export interface PackSummary {
  id: string;
  name: string;
  path: string;
  manifest: PackManifest;
}

/** Folders of imports in progress: `.importing-<pack id>-<pid>-<random>`. */
export const IMPORTING_PREFIX = '.importing-';

/**
 * Removes the folders of imports whose process is gone (killed, crashed, power cut): each can hold
 * gigabytes. Folders of imports still running in another process are left alone.
 */
export async function removeAbandonedImports(storeDir: string): Promise<string[]> {
  const names = await readdir(storeDir).catch(() => [] as string[]);
  const abandoned = names.filter((name) => name.startsWith(IMPORTING_PREFIX) && !isRunning(ownerPid(name)));
  await Promise.all(abandoned.map((name) => rm(join(storeDir, name), { recursive: true, force: true })));
  return abandoned;
}

function ownerPid(name: string): number | undefined {
  const pid = Number(name.slice(IMPORTING_PREFIX.length).split('-')[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isRunning(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every valid pack, sorted by name; folders without a valid manifest are skipped. */
export async function listPacks(storeDir: string): Promise<PackSummary[]> {
  const entries = await readdir(storeDir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const packs: PackSummary[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(storeDir, entry.name);
    const manifest = await loadManifest(path).catch(() => null);
    if (manifest) packs.push({ id: manifest.id, name: manifest.name, path, manifest });
  }
  return packs.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/** The pack with this name or id; the error lists what the store holds. */
export async function findPack(storeDir: string, nameOrId: string): Promise<PackSummary> {
  const packs = await listPacks(storeDir);
  const found = packs.find((p) => p.id === nameOrId) ?? packs.find((p) => p.name === nameOrId);
  if (found) return found;
  const known = packs.map((p) => `${p.name} (${p.id})`).join(', ') || 'none';
  throw new Error(`no model "${nameOrId}" in ${storeDir}; installed: ${known}`);
}

export async function removePack(storeDir: string, nameOrId: string): Promise<PackSummary> {
  const pack = await findPack(storeDir, nameOrId);
  await rm(pack.path, { recursive: true, force: true });
  return pack;
}
