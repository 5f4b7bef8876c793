import { execFile } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { Engine, type EngineEvent } from '../../src/engine/runtime/engine.js';
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
    (r) => ({ code: 0, stdout: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
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
  }, 60_000);
});
