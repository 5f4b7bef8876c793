import type { CliCommand } from '../command.js';
import { doctor } from './doctor.js';
import { dataCommand } from './data.js';
import { flopsCommand } from './flops.js';
import { importCommand } from './import.js';

/** Every CLI command, in the order `--help` lists them. Add one line per new command file. */
export const commands: CliCommand[] = [
  doctor,
  dataCommand,
  flopsCommand,
  importCommand,
];
