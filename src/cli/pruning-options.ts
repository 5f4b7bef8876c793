import { dirname, extname, join, basename } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { parseMethod, parseSchedule, withOverrides, type MethodSpec } from '../shared/pruning.js';
import type { Trace } from '../shared/trace.js';
import { writeFileAtomic } from '../engine/io/files.js';
import { traceToJson, traceToLayerCsv, traceToTokenCsv } from '../shared/trace-files.js';
import { CliError, type ParsedArgs } from './command.js';
import { splitMethodList } from '../engine/eval/method-list.js';
import { DEFAULT_SETTINGS } from '../shared/settings.js';

/**
 * The pruning options every model-running command shares (ask, compare, bench, eval):
 *   --method <m>        repeatable; see parseMethod (e.g. transprune-high, fastv:k=2,r=0.5, divprune:ratio=0.5+iga)
 *   --methods a,b       the same as a comma-separated list (as eval takes it)
 *   --schedule a/p/r    1-based layers: accumulate/prune/ratios, e.g. 7-12/7,9,12/0.875,0.625,0.125
 *   --alpha a           TransPrune's TTV weight (0 = IGA only, 1 = TTV only)
 *   --trace out.json    write the pruning trace (out.csv: per-token CSV plus out.layers.csv)
 */
export const pruningOptions = {
  method: { type: 'string', multiple: true },
  methods: { type: 'string' },
  schedule: { type: 'string' },
  alpha: { type: 'string' },
  trace: { type: 'string' },
} satisfies NonNullable<ParseArgsConfig['options']>;

export const PRUNING_USAGE = '[--method M]... | [--methods M,M] [--schedule A/P/R] [--alpha a] [--trace out.json|out.csv]';

/** The method strings of --method (repeated) and --methods (a comma-separated list), in the order given; none: []. */
export function methodNamesFromArgs(values: ParsedArgs['values']): string[] {
  const repeated = values.method === undefined ? [] : (Array.isArray(values.method) ? values.method : [values.method]).map(String);
  return [...repeated, ...(values.methods === undefined ? [] : splitMethodList(String(values.methods)))];
}

/**
 * The methods asked for, with --schedule/--alpha applied to each; `fallback` when none is given (the
 * app's own default method unless the command says otherwise).
 */
export function methodsFromArgs(args: ParsedArgs, fallback: string | string[] = DEFAULT_SETTINGS.method): MethodSpec[] {
  const given = methodNamesFromArgs(args.values);
  const names = given.length > 0 ? given : [fallback].flat();
  const schedule = args.values.schedule === undefined ? undefined : cliParse(() => parseSchedule(String(args.values.schedule)));
  const alpha = args.values.alpha === undefined ? undefined : Number(args.values.alpha);
  if (alpha !== undefined && !(alpha >= 0 && alpha <= 1)) throw new CliError('--alpha must be a number in [0, 1]');
  // --schedule applies to every transprune and random method, --alpha to every transprune one; the
  // other methods (e.g. the `none` of a comparison) are left as they are.
  return names.map((name) =>
    cliParse(() => {
      const spec = parseMethod(name);
      const kind = spec.llm.kind;
      return withOverrides(spec, {
        schedule: kind === 'transprune' || kind === 'random' ? schedule : undefined,
        alpha: kind === 'transprune' ? alpha : undefined,
      });
    }),
  );
}

/** Writes a trace where --trace points: JSON, or for a .csv path the per-token CSV and a per-layer CSV beside it. */
export async function writeTraceFiles(trace: Trace, path: string): Promise<string[]> {
  if (extname(path).toLowerCase() !== '.csv') {
    await writeFileAtomic(path, traceToJson(trace));
    return [path];
  }
  const layers = join(dirname(path), `${basename(path, extname(path))}.layers.csv`);
  await writeFileAtomic(path, traceToTokenCsv(trace));
  await writeFileAtomic(layers, traceToLayerCsv(trace));
  return [path, layers];
}

function cliParse<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}
