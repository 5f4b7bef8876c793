import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAppCore } from '../../src/main/app-core.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { IMPORTING_PREFIX } from '../../src/engine/pack/store.js';

/**
 * The app core with the real engine: the first launch installs the bundled model, later launches leave the store alone,
 * and every launch clears what a killed app left behind.
 */
describe('app core start-up', () => {
  it('imports the bundled model once, on the first launch with an empty store', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tp-core-'));
    const bundled = (await makeSyntheticCheckpoint(join(root, 'demo-model'))).dir;
    const userData = join(root, 'user');
    const launch = () =>
      createAppCore({
        spawn: nodeEngineSpawner({ modelStore: modelStoreDir(userData), stdio: 'ignore' }),
        userData,
        chooseSavePath: async () => null,
        bundledModel: bundled,
      });

    const first = launch();
    const progress: unknown[] = [];
    first.onEvent((event, payload) => event === 'models.progress' && progress.push(payload));
    await first.start();
    const installed = await first.call('models.list', {});
    expect(installed).toMatchObject({ ok: true, value: [{ name: 'demo-model' }] });
    expect(progress.length).toBeGreaterThan(0);
    await first.stop();

    const second = launch();
    const again: unknown[] = [];
    second.onEvent((event, payload) => event === 'models.progress' && again.push(payload));
    await second.start();
    expect(await second.call('models.list', {})).toEqual(installed);
    expect(again).toEqual([]);
    await second.stop();
  });

  it('installs a bundled GGUF pair (the demo model ships as one) on the first launch', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tp-core-'));
    const bundled = join(root, 'demo-model');
    cpSync(join(import.meta.dirname, '../fixtures/gguf/tiny-llava'), bundled, { recursive: true });
    const userData = join(root, 'user');
    const core = createAppCore({
      spawn: nodeEngineSpawner({ modelStore: modelStoreDir(userData), stdio: 'ignore' }),
      userData,
      chooseSavePath: async () => null,
      bundledModel: bundled,
    });
    await core.start();
    const listed = await core.call('models.list', {});
    expect(listed).toMatchObject({ ok: true, value: [{ details: { visualTokens: expect.any(Number) } }] });
    await core.stop();
  });

  it('starts without a bundled model when none ships', async () => {
    const userData = mkdtempSync(join(tmpdir(), 'tp-core-'));
    const core = createAppCore({
      spawn: nodeEngineSpawner({ modelStore: modelStoreDir(userData), stdio: 'ignore' }),
      userData,
      chooseSavePath: async () => null,
      bundledModel: join(userData, 'no-such-demo'),
    });
    await core.start();
    expect(await core.call('models.list', {})).toEqual({ ok: true, value: [] });
    await core.stop();
  });

  it('removes the temp files of cut-short writes and the folders of killed imports before anything reads them', async () => {
    const userData = mkdtempSync(join(tmpdir(), 'tp-core-'));
    const store = modelStoreDir(userData);
    const killedImport = join(store, `${IMPORTING_PREFIX}0123456789abcdef-${spawnSync('true').pid}-00000000`);
    mkdirSync(killedImport, { recursive: true });
    writeFileSync(join(killedImport, 'layer_00.bin'), Buffer.alloc(1 << 20));
    mkdirSync(join(userData, 'conversations'));
    writeFileSync(join(userData, 'conversations', '.c1.json.0a1b2c3d4e5f.tmp'), 'half a write');
    writeFileSync(join(userData, '.settings.json.ffeeddccbbaa.tmp'), 'half a write');
    const core = createAppCore({
      spawn: nodeEngineSpawner({ modelStore: store, stdio: 'ignore' }),
      userData,
      chooseSavePath: async () => null,
    });
    await core.start();
    expect(readdirSync(store)).toEqual([]);
    expect(readdirSync(join(userData, 'conversations'))).toEqual([]);
    expect(readdirSync(userData).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    await core.stop();
  });
});
