import { listPacks, removePack } from '../../engine/pack/store.js';
import { CliError, type CliCommand } from '../command.js';
import { namedPackFromArgs, storeFromArgs } from '../run-options.js';
import { printTable } from '../table.js';

/** `list`: the model store's packs, the names and ids every other command takes. */
export const listCommand: CliCommand = {
  name: 'list',
  summary: 'list the model packs in the model store (name, id, precision, imported from)',
  usage: 'list [--store dir]',
  options: { store: { type: 'string' } },
  async run(args) {
    if (args.positionals.length) throw new CliError(`list takes no arguments\nusage: npm run cli -- ${this.usage}`);
    const store = storeFromArgs(args.values);
    const packs = await listPacks(store);
    if (!packs.length) console.log(`no models in ${store}; import one with \`npm run cli -- import <folder | model.gguf>\``);
    else
      printTable(
        ['name', 'id', 'dtype', 'imported from'],
        packs.map((p) => [p.name, p.id, p.manifest.dtype, p.manifest.source.path]),
      );
    return 0;
  },
};

/** `remove`: deletes a pack from the store (its source checkpoint is left alone). */
export const removeCommand: CliCommand = {
  name: 'remove',
  summary: 'delete a model pack from the model store (the checkpoint it was imported from stays)',
  usage: 'remove <name|id> [--store dir]',
  options: { store: { type: 'string' } },
  async run(args) {
    const { store, pack } = await namedPackFromArgs(args, this.usage);
    await removePack(store, pack.id);
    console.log(`removed "${pack.name}" (${pack.id}) from ${store}`);
    return 0;
  },
};
