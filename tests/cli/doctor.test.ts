import { mkdirSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { doctor } from '../../src/cli/commands/doctor.js';
import { commands } from '../../src/cli/commands/index.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

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
