import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAppCore, type AppCore } from '../../src/main/app-core.js';
import type { ModelSummary } from '../../src/shared/ipc.js';
import type { AppSettings } from '../../src/shared/settings.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { IMPORTING_PREFIX } from '../../src/engine/pack/store.js';

/**
 * The app core with the real engine: the first launch installs the bundled model, later launches keep it (or replace it when an update changed it),
 * and every launch clears what a killed app left behind.
 */
describe('app core start-up', () => {
  it('imports the bundled model on the first launch, keeps it on later ones, and replaces it when an update changes it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tp-core-'));
    const bundled = (await makeSyntheticCheckpoint(join(root, 'demo-model'))).dir;
    const userData = join(root, 'user');
    const launch = async (run: (core: AppCore) => Promise<void>) => {
      const core = createAppCore({
        spawn: nodeEngineSpawner({ modelStore: modelStoreDir(userData), stdio: 'ignore' }),
        userData,
        chooseSavePath: async () => null,
        bundledModel: bundled,
      });
      const progress: unknown[] = [];
      core.onEvent((event, payload) => event === 'models.progress' && progress.push(payload));
      await core.start();
      await run(core);
      await core.stop();
      return progress;
    };
    const models = async (core: AppCore) => (await core.call('models.list', {})) as { ok: true; value: ModelSummary[] };
    const settings = async (core: AppCore) => ((await core.call('settings.get', {})) as { ok: true; value: AppSettings }).value;

    let installed: ModelSummary[] = [];
    const progress = await launch(async (core) => {
      installed = (await models(core)).value;
      expect(installed).toMatchObject([{ name: 'demo-model', details: { source: bundled } }]);
      expect((await settings(core)).modelId).toBe(installed[0].id);
    });
    expect(progress.length).toBeGreaterThan(0);

    await launch(async (core) => expect((await models(core)).value).toEqual(installed)); // unchanged: the same pack

    await makeSyntheticCheckpoint(bundled, { seed: 7 }); // an update ships another demo model in the same place
    await launch(async (core) => {
      const [updated, ...others] = (await models(core)).value;
      expect(others).toEqual([]);
      expect(updated).toMatchObject({ name: 'demo-model', details: { source: bundled } });
      expect(updated.id).not.toBe(installed[0].id);
      expect((await settings(core)).modelId).toBe(updated.id); // the setting follows the replacement
      expect(await core.call('models.remove', { id: updated.id })).toMatchObject({ ok: true });
      expect(
        await core.call('models.import', { path: (await makeSyntheticCheckpoint(join(root, 'mine'), { seed: 8 })).dir }),
      ).toMatchObject({
        ok: true,
      });
    });
    // Removed by the user, who has another model: it stays removed.
    await launch(async (core) => expect((await models(core)).value.map((m) => m.name)).toEqual(['mine']));
  }, 30_000); // five launches, each spawning an engine process: over vitest's 5 s default on a loaded 2-core machine

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
