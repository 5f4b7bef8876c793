import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { IMPORTING_PREFIX, listPacks, removeAbandonedImports } from '../../src/engine/pack/store.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * Packs that survive kills and power cuts: imports killed half-way leave folders that the next import
 * (and the engine's start) removes, and every pack file is fsynced before the folder is renamed in.
 */

const root = mkdtempSync(join(tmpdir(), 'tp-durable-'));
const CHILD = join(import.meta.dirname, '..', 'helpers', 'import-child.ts');
let checkpoint: string;

beforeAll(async () => {
  // Enough layers that an import takes long enough to be killed half-way.
  checkpoint = (await makeSyntheticCheckpoint(join(root, 'hf'), { layers: 24 })).dir;
}, 60_000);

/** Starts an import in its own process and SIGKILLs it once its temp folder exists. */
function killMidImport(store: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // node itself with tsx's loader: the killed process is the importer (the tsx CLI would leave it running as its child).
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, checkpoint, store], { stdio: 'ignore' });
    const poll = setInterval(() => {
      if (existsSync(store) && readdirSync(store).some((n) => n.startsWith(IMPORTING_PREFIX))) child.kill('SIGKILL');
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      signal === 'SIGKILL' ? resolve() : reject(new Error(`the import finished (${code}) before it could be killed`));
    });
  });
}

describe('interrupted imports', () => {
  it('leave a folder that the next import removes, sparing imports still running elsewhere', async () => {
    const store = join(root, 'store-killed');
    for (let i = 0; i < 3; i++) await killMidImport(store);
    // Each new import already removed the folder of the one killed before it.
    const leftovers = readdirSync(store).filter((n) => n.startsWith(IMPORTING_PREFIX));
    expect(leftovers.length).toBe(1);
    // A folder of a live import (this very process) and one in the old naming (no pid).
    const live = `${IMPORTING_PREFIX}0123456789abcdef-${process.pid}-00000000`;
    mkdirSync(join(store, live));
    mkdirSync(join(store, `${IMPORTING_PREFIX}0123456789abcdef-deadbeef`));
    const imported = await importCheckpoint(checkpoint, store, { name: 'after' });
    expect(readdirSync(store).sort()).toEqual([imported.manifest.id, live].sort());
    expect(await removeAbandonedImports(store)).toEqual([]);
    // A child killed just after its rename has already installed the pack; the import then found it.
    expect((await listPacks(store)).map((p) => p.id)).toEqual([imported.manifest.id]);
  }, 120_000);
});

const hasStrace = spawnSync('strace', ['-V']).status === 0;

describe.skipIf(!hasStrace)('an import under strace', () => {
  it('fsyncs every pack file and the folder before renaming it into the store, then the store', async () => {
    const store = join(root, 'store-traced');
    const log = join(root, 'strace.txt');
    execFileSync('strace', [
      '-f',
      '-y',
      '-o',
      log,
      '-e',
      'trace=fsync,fdatasync,rename,renameat,renameat2',
      process.execPath,
      '--import',
      'tsx',
      CHILD,
      checkpoint,
      store,
    ]);
    const lines = (await import('node:fs')).readFileSync(log, 'utf8').split('\n');
    const [pack] = await listPacks(store);
    const renameAt = lines.findIndex((l) => /rename/.test(l) && l.includes(IMPORTING_PREFIX) && l.includes(`/${pack.id}"`));
    expect(renameAt).toBeGreaterThan(0);
    const before = lines.slice(0, renameAt).join('\n');
    for (const file of readdirSync(pack.path)) {
      expect(before, file).toMatch(new RegExp(`f(data)?sync\\(\\d+<[^>]*${IMPORTING_PREFIX}[^>/]*/${file.replace('.', '\\.')}[^>/]*>\\)`)); // manifest.json: its temp file
    }
    expect(before).toMatch(new RegExp(`fsync\\(\\d+<[^>]*/${IMPORTING_PREFIX}[^>/]*>\\)`));
    expect(lines.slice(renameAt).join('\n')).toMatch(new RegExp(`fsync\\(\\d+<${store}>\\)`));
  }, 120_000);
});
