import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { doctor } from '../../src/cli/commands/doctor.js';
import { commands } from '../../src/cli/commands/index.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { listPacks } from '../../src/engine/pack/store.js';
import { defaultUserDataDir, modelStoreDir } from '../../src/main/paths.js';

/** `doctor --json` against facts read independently: package versions, files on disk. */
describe('doctor', () => {
  it('is registered', () => {
    expect(commands).toContain(doctor);
  });

  it('reports versions, the providers that load, and the model store', async () => {
    const userData = mkdtempSync(join(tmpdir(), 'tp-doctor-'));
    const checkpoint = await makeSyntheticCheckpoint(join(userData, 'hf-tiny'));
    await importCheckpoint(checkpoint.dir, join(userData, 'models'));
    mkdirSync(join(userData, 'models', 'half-imported')); // no manifest: not a model

    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const code = await doctor.run({ values: { json: true, 'user-data': userData }, positionals: [] });
    const report = JSON.parse(log.mock.calls.map((c) => c.join(' ')).join('\n'));
    log.mockRestore();

    const ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
    expect(code).toBe(0);
    expect(report).toMatchObject({ node: process.versions.node, onnxruntime: ortVersion, modelStore: join(userData, 'models'), models: 1 });
    expect(report.providers.find((p: { name: string }) => p.name === 'cpu')).toEqual({ name: 'cpu', bundled: true, loads: true });
    expect(report.activeProvider).toBe('cpu');
    // Either a binary path or the reason there is none, never both.
    expect((report.electron === null) !== (report.electronMissingReason === null)).toBe(true);
  });
});

/** One model store: the CLI imports into the app's user-data folder; TRANSPRUNE_HOME moves it for both. */
describe('the model store the CLI and the app share', () => {
  const ROOT = join(import.meta.dirname, '..', '..');
  const cli = (env: Record<string, string>, ...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'index.ts'), ...args], {
      encoding: 'utf8',
      cwd: ROOT,
      env: { ...process.env, TRANSPRUNE_HOME: '', ...env },
    });

  it('a CLI import lands where the app looks, and doctor names that one store', async () => {
    const home = mkdtempSync(join(tmpdir(), 'tp-one-store-'));
    const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'config') };
    const checkpoint = await makeSyntheticCheckpoint(join(home, 'hf-tiny'));
    const imported = cli(env, 'import', checkpoint.dir);
    expect(imported.status, imported.stderr).toBe(0);
    // The folder the desktop app (Electron's userData) and `npm run web` use on Linux.
    const appStore = join(home, 'config', 'TransPrune Studio', 'models');
    expect((await listPacks(appStore)).map((p) => p.name)).toEqual(['hf-tiny']);
    expect(modelStoreDir(defaultUserDataDir('linux', env), {})).toBe(appStore);
    const doctorRun = cli(env, 'doctor', '--json');
    expect(JSON.parse(doctorRun.stdout)).toMatchObject({ modelStore: appStore, modelStoreFrom: 'user data', models: 1 });
  });

  it('TRANSPRUNE_HOME moves it for the CLI and the app alike', async () => {
    const home = mkdtempSync(join(tmpdir(), 'tp-one-store-'));
    const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), TRANSPRUNE_HOME: join(home, 'tp') };
    expect(modelStoreDir(join(home, 'any-user-data'), env)).toBe(join(home, 'tp', 'models'));
    const checkpoint = await makeSyntheticCheckpoint(join(home, 'hf-tiny'));
    expect(cli(env, 'import', checkpoint.dir).status).toBe(0);
    expect((await listPacks(join(home, 'tp', 'models'))).length).toBe(1);
    const text = cli(env, 'doctor').stdout;
    expect(text).toMatch(
      new RegExp(
        `^model store +${join(home, 'tp', 'models')} \\(1 model\\(s\\)\\), from TRANSPRUNE_HOME; the app and the CLI share it$`,
        'm',
      ),
    );
  });
});
