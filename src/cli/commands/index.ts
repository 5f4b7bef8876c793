import type { CliCommand } from '../command.js';
import { dataCommand } from './data.js';

/** Every CLI command, in the order `--help` lists them. Add one line per new command file. */
export const commands: CliCommand[] = [
  dataCommand,
];
