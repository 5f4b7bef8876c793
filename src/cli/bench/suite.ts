import type { ParseArgsConfig } from 'node:util';
import type { ParsedArgs } from '../command.js';

/** One `npm run bench -- <name>` benchmark; src/cli/commands/bench.ts lists them in a table. */
export interface BenchSuite {
  summary: string;
  usage: string;
  /** Options this suite reads; the bench command accepts the union of all suites' options. */
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: ParsedArgs['values']): Promise<void>;
}
