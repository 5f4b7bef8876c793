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

/** The benchmark model's decoder shape and the rounds to time: options every suite takes. */
export const modelShapeOptions = {
  hidden: { type: 'string' },
  layers: { type: 'string' },
  runs: { type: 'string' },
} as const;
