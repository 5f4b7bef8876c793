import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/engine/pack/manifest.js';
import { IMPORTING_PREFIX } from '../../src/engine/pack/store.js';
import { EngineHost } from '../../src/main/engine-host.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/** Model management through the engine process: import with streamed progress, list, cancel, remove. */

const root = mkdtempSync(join(tmpdir(), 'tp-models-'));
const modelStore = join(root, 'models');
const host = new EngineHost({ spawn: nodeEngineSpawner({ modelStore, stdio: 'ignore' }) });
let checkpoint: SyntheticCheckpoint;
/** Import folders left in the store before the engine starts: one whose process was killed, one still at work. */
const abandonedImport = `${IMPORTING_PREFIX}0123456789abcdef-${spawnSync('true').pid}-00000000`;
const runningImport = `${IMPORTING_PREFIX}fedcba9876543210-${process.pid}-00000000`;

beforeAll(async () => {
  checkpoint = await makeSyntheticCheckpoint(join(root, 'hf-tiny'));
  mkdirSync(join(modelStore, abandonedImport), { recursive: true });
  writeFileSync(join(modelStore, abandonedImport, 'layer_00.bin'), Buffer.alloc(1 << 20));
  mkdirSync(join(modelStore, runningImport));
  await host.start();
});
afterAll(() => host.shutdown());

describe('models in the engine process', () => {
  it('removes the folders of interrupted imports when it starts, sparing one still at work', () => {
    expect(readdirSync(modelStore)).toEqual([runningImport]);
  });

  it('imports a Hugging Face folder, streaming progress up to done', async () => {
    const progress: number[] = [];
    const model = await host.call(
      'models.import',
      { path: checkpoint.dir },
      { onEvent: (e) => e.event === 'progress' && progress.push((e.payload as { done: number }).done) },
    );
    const manifest = await loadManifest(model.path);
    // The model card's facts come with it (architecture, parameters, dtype, size on disk, visual tokens).
    expect(model).toEqual({
      id: manifest.id,
      name: manifest.name,
      path: join(modelStore, manifest.id),
      details: expect.objectContaining({
        dtype: manifest.dtype,
        visualTokens: manifest.numVisualTokens,
        layers: manifest.config.text.numLayers,
        source: checkpoint.dir,
      }),
    });
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((p, i) => i === 0 || p >= progress[i - 1])).toBe(true);
    expect(progress.at(-1)).toBe(1);
    expect(await host.call('models.list', {})).toEqual([model]);
  });

  it('refuses a folder that is not a checkpoint, with the reason', async () => {
    await expect(host.call('models.import', { path: root })).rejects.toThrow(/config\.json/);
  });

  it('plans an import without writing anything, then imports at the precision asked for', async () => {
    const before = readdirSync(modelStore);
    const plan = await host.call('models.plan', { path: checkpoint.dir });
    expect(readdirSync(modelStore)).toEqual(before);
    expect(plan.footprints.map((f) => f.dtype)).toEqual(['int4', 'int8', 'fp16', 'fp32']);
    expect(plan.recommended).toBe('fp32'); // a tiny model on any machine
    expect(plan.machineMemoryBytes).toBeGreaterThan(0);
    const model = await host.call('models.import', { path: checkpoint.dir, dtype: 'int8' });
    expect((await loadManifest(model.path)).dtype).toBe('int8');
    expect(model.name).toBe('hf-tiny (int8)'); // beside the fp32 pack of the same folder
    expect(model.details?.sizeBytes).toBeGreaterThan(plan.footprints.find((f) => f.dtype === 'int8')!.diskBytes);
    await host.call('models.remove', { id: model.id });
  });

  it('removes a pack from the store', async () => {
    const [model] = await host.call('models.list', {});
    await host.call('models.remove', { id: model.id });
    expect(existsSync(model.path)).toBe(false);
    expect(await host.call('models.list', {})).toEqual([]);
  });
});
