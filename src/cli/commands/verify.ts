import { describeDamage, verifyPack } from '../../engine/pack/verify.js';
import type { CliCommand } from '../command.js';
import { namedPackFromArgs } from '../run-options.js';

/** `verify`: re-hash a pack's weight files against the hashes recorded at import. */
export const verifyCommand: CliCommand = {
  name: 'verify',
  summary: "check a model pack's weight files against the sha256 recorded when it was imported",
  usage: 'verify <name|id> [--store dir]',
  options: { store: { type: 'string' } },
  async run(args) {
    const { pack } = await namedPackFromArgs(args, this.usage);
    const result = await verifyPack(pack.path, {
      onProgress: ({ done, total, message }) =>
        process.stderr.write(`${String(Math.round(total ? (100 * done) / total : 100)).padStart(3)}%  ${message}\n`),
    });
    const size = `${result.files} weight files, ${(result.bytes / 1e6).toFixed(1)} MB`;
    if (result.ok) {
      console.log(`ok: "${pack.name}" (${pack.id}): ${size} match their recorded sha256`);
      return 0;
    }
    for (const damage of result.damaged) console.log(`damaged: ${describeDamage(damage)}`);
    console.log(
      `"${pack.name}" (${pack.id}) is damaged (${size} checked): remove it (\`npm run cli -- remove ${pack.id}\`) and import it again`,
    );
    return 1;
  },
};
