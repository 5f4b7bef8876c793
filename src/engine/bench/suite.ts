import type { ParseArgsConfig } from 'node:util';
import type { ProviderRequest } from '../../shared/providers.js';

/** One `npm run bench -- <name>` benchmark; src/cli/commands/bench.ts lists them in a table. */
export interface BenchSuite {
  summary: string;
  usage: string;
  /** Options this suite reads; the bench command accepts the union of all suites' options. */
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | (string | boolean)[] | undefined>): Promise<void>;
}

type OptionValues = Parameters<BenchSuite['run']>[0];

/** An integer option, or `fallback` when it is absent. */
export const int = (value: unknown, fallback: number) => (value === undefined ? fallback : Number.parseInt(String(value), 10));

/** The --threads and --ep options every suite takes. */
export const providerOptions = {
  threads: { type: 'string' },
  ep: { type: 'string' },
} as const;

/** The execution provider (`defaultEp` when --ep is absent) and thread count (ONNX Runtime's default when absent). */
export function providerFromValues(values: OptionValues, defaultEp: ProviderRequest): { ep: ProviderRequest; threads: number | undefined } {
  return {
    ep: (values.ep as ProviderRequest | undefined) ?? defaultEp,
    threads: values.threads === undefined ? undefined : int(values.threads, 1),
  };
}
