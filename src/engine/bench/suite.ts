import type { ParseArgsConfig } from 'node:util';

/** One `npm run bench -- <name>` benchmark; src/cli/commands/bench.ts lists them in a table. */
export interface BenchSuite {
  summary: string;
  usage: string;
  /** Options this suite reads; the bench command accepts the union of all suites' options. */
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | (string | boolean)[] | undefined>): Promise<void>;
}
