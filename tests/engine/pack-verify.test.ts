import { execFile } from 'node:child_process';
import { mkdtempSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { Engine, type EngineEvent } from '../../src/engine/runtime/engine.js';
import { needsVerification, verifyPack } from '../../src/engine/pack/verify.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * A layer file zero-filled after the import (same size, so nothing else notices) used to load and
 * answer wrongly. The first load of a pack hashes its weights against the manifest's weightsSha256,
 * and `cli verify` does so on request.
 */

const root = mkdtempSync(join(tmpdir(), 'tp-verify-'));
const store = join(root, 'store');
let pack: ImportedPack;
let image: Buffer;

const cli = (...args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], {
    cwd: join(import.meta.dirname, '..', '..'),
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

beforeAll(async () => {
  pack = await importCheckpoint((await makeSyntheticCheckpoint(join(root, 'hf'))).dir, store, { name: 'tiny' });
  image = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#c33' } })
    .png()
    .toBuffer();
}, 60_000);

describe('pack verification', () => {
  it('hashes the weights on the first load, with progress, and not on the next', async () => {
    const events: EngineEvent[] = [];
    const engine = new Engine({ modelStore: store, ep: 'cpu' });
    await engine.ensureModel(pack.dir, 'cpu', { onEvent: (e) => events.push(e) });
    expect(events[0]).toEqual({ type: 'stage', stage: 'verifying' });
    expect(events.filter((e) => e.type === 'progress' && e.progress.message?.startsWith('verifying layer_')).length).toBeGreaterThan(0);
    await engine.unload();
    const again: EngineEvent[] = [];
    await engine.ensureModel(pack.dir, 'cpu', { onEvent: (e) => again.push(e) });
    expect(again.some((e) => e.type === 'stage' && e.stage === 'verifying')).toBe(false);
    await engine.unload();
    expect((await cli('verify', 'tiny', '--store', store)).code).toBe(0);
  });

  it('a failed check on request makes the next load check again, even when the damage kept size and mtime', async () => {
    const other = await importCheckpoint((await makeSyntheticCheckpoint(join(root, 'hf-other'), { seed: 2 })).dir, store, {
      name: 'other',
    });
    const layer = join(other.dir, 'layer_00.bin');
    const stamp = 1_700_000_000; // whole seconds: set again exactly after the damage
    utimesSync(layer, stamp, stamp);
    const engine = new Engine({ modelStore: store, ep: 'cpu' });
    await engine.ensureModel(other.dir, 'cpu');
    await engine.unload();
    writeFileSync(layer, Buffer.alloc(statSync(layer).size));
    utimesSync(layer, stamp, stamp); // bit rot: the bytes change, the size and mtime the first load recorded do not
    expect(await needsVerification(other.dir)).toBe(false);
    const result = await verifyPack(other.dir);
    expect(result).toMatchObject({ ok: false, damaged: [{ file: 'layer_00.bin', reason: 'changed' }] });
    expect(await needsVerification(other.dir)).toBe(true);
    await expect(engine.ensureModel(other.dir, 'cpu')).rejects.toThrow(/is damaged: layer_00\.bin does not match its recorded sha256/);
  }, 60_000);

  it('refuses a zero-filled layer file at load and in `cli verify`, naming the file', async () => {
    const layer = join(pack.dir, 'layer_01.bin');
    writeFileSync(layer, Buffer.alloc(statSync(layer).size));
    const engine = new Engine({ modelStore: store, ep: 'cpu' });
    await expect(
      engine.ask({ model: 'tiny', image, question: 'What colour?', maxTokens: 2, method: { llm: { kind: 'none' } } }),
    ).rejects.toThrow(/is damaged: layer_01\.bin does not match its recorded sha256 .* Remove the model and import it again/);
    const verified = await cli('verify', 'tiny', '--store', store);
    expect(verified.code).toBe(1);
    expect(verified.stdout).toMatch(/damaged: layer_01\.bin does not match its recorded sha256/);
    // `cli ask` shows the check as what it is, not as an import.
    const imagePath = join(root, 'red.png');
    writeFileSync(imagePath, image);
    const asked = await cli('ask', '--model', 'tiny', '--store', store, '--image', imagePath, '--max-tokens', '2', 'What colour?');
    expect(asked.code).toBe(1);
    expect(asked.stderr).toMatch(/verifying 100% checked/);
    expect(asked.stderr).not.toMatch(/importing/);
    expect(asked.stderr).toMatch(/is damaged: layer_01\.bin does not match its recorded sha256/);
  }, 60_000);
});
