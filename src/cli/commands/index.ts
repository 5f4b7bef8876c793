import type { CliCommand } from '../command.js';
import { doctor } from './doctor.js';
import { dataCommand } from './data.js';
import { flopsCommand } from './flops.js';
import { importCommand } from './import.js';
import { askCommand } from './ask.js';
import { benchCommand } from './bench.js';
import { compareCommand } from './compare.js';
import { evalCommand } from './eval.js';
import { verifyCommand } from './verify.js';
import { listCommand, removeCommand } from './models.js';
import { makeCheckpointCommand } from './make-checkpoint.js';

/** Every CLI command, in the order `--help` lists them. Add one line per new command file. */
export const commands: CliCommand[] = [
  doctor,
  dataCommand,
  flopsCommand,
  importCommand,
  listCommand,
  verifyCommand,
  removeCommand,
  askCommand,
  benchCommand,
  compareCommand,
  evalCommand,
  makeCheckpointCommand,
];
