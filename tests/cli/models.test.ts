import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CliError } from '../../src/cli/command.js';
import { commands } from '../../src/cli/commands/index.js';
import { listCommand, removeCommand } from '../../src/cli/commands/models.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { listPacks } from '../../src/engine/pack/store.js';

/** `list` and `remove` against the store as importCheckpoint left it, read back with listPacks. */
describe('list and remove', () => {
  afterEach(() => vi.restoreAllMocks());
  const printed = () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    log.mockClear(); // a second spy on console.log is the first one, with its calls
    return () => log.mock.calls.map((c) => c.join(' ')).join('\n');
  };

  it('are registered', () => {
    expect(commands).toEqual(expect.arrayContaining([listCommand, removeCommand]));
  });

  it('list the packs, remove one by name, and name what is installed when asked for one that is not', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tp-models-'));
    const store = join(root, 'store');
    const checkpoint = await makeSyntheticCheckpoint(join(root, 'tiny'));
    const fp32 = await importCheckpoint(checkpoint.dir, store);
    const fp16 = await importCheckpoint(checkpoint.dir, store, { dtype: 'fp16' });

    let output = printed();
    expect(await listCommand.run({ values: { store }, positionals: [] })).toBe(0);
    const rows = output().split('\n').slice(2);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^tiny\\s+${fp32.manifest.id}\\s+fp32\\s+${checkpoint.dir}$`));
    expect(rows[1]).toMatch(new RegExp(`^tiny \\(fp16\\)\\s+${fp16.manifest.id}\\s+fp16\\s+${checkpoint.dir}$`));

    output = printed();
    expect(await removeCommand.run({ values: { store }, positionals: ['tiny (fp16)'] })).toBe(0);
    expect(output()).toBe(`removed "tiny (fp16)" (${fp16.manifest.id}) from ${store}`);
    expect((await listPacks(store)).map((p) => p.id)).toEqual([fp32.manifest.id]);

    await expect(removeCommand.run({ values: { store }, positionals: ['tiny (fp16)'] })).rejects.toThrow(
      new CliError(`no model "tiny (fp16)" in ${store}; installed: tiny (${fp32.manifest.id})`),
    );
    await removeCommand.run({ values: { store }, positionals: [fp32.manifest.id] });
    output = printed();
    await listCommand.run({ values: { store }, positionals: [] });
    expect(output()).toMatch(/^no models in /);
  });
});
