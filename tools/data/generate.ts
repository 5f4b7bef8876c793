// Entry point of the standalone data generator that tools/demo-model/carry.sh bundles for the GPU
// machine (no npm there): the same `data` command as `npm run cli -- data`, nothing else.
import { parseCommandArgs } from '../../src/cli/command.js';
import { dataCommand } from '../../src/cli/commands/data.js';

process.exitCode = await dataCommand.run(parseCommandArgs(dataCommand, process.argv.slice(2)));
