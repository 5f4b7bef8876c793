import { basename, dirname, extname, join } from 'node:path';
import { formatMethod, type MethodSpec } from '../../shared/pruning.js';
import { stageCounts, type Trace } from '../../shared/trace.js';
import type { AskResult, CompareResult } from '../../engine/runtime/engine.js';
import { CliError, type CliCommand } from '../command.js';
import { PRUNING_USAGE, methodsFromArgs, pruningOptions, writeTraceFiles } from '../pruning-options.js';
import {
  MODEL_USAGE,
  RUNTIME_USAGE,
  engineFromArgs,
  integerArg,
  questionFromArgs,
  questionOptions,
  runtimeOptions,
} from '../run-options.js';
import { printTable } from '../table.js';
import { formatFlopsShare } from '../../shared/compute.js';
import { DEFAULT_SETTINGS } from '../../shared/settings.js';

/**
 * `compare`: one question, one image, several methods; answers side by side with visual tokens per
 * stage, FLOPs in both conventions and prefill time relative to the first method. Greedy decoding,
 * so differences come from pruning only. One engine request (Engine.compare): the image is encoded
 * once and the decoder layers before the first prune are computed once for all methods; every
 * method's trace is recorded so both FLOPs conventions come from the real counts.
 */
export const compareCommand: CliCommand = {
  name: 'compare',
  summary: 'answer one question with several pruning methods and compare answers, tokens, FLOPs and prefill time',
  usage: `compare ${MODEL_USAGE} [--image <file>] [--methods none,transprune-high] [--max-tokens n] ${RUNTIME_USAGE} ${PRUNING_USAGE} "question"`,
  options: {
    ...questionOptions,
    'max-tokens': { type: 'string', default: '64' },
    ...runtimeOptions,
    ...pruningOptions,
  },
  async run(args) {
    const { values } = args;
    const { model, image, question, maxPixels } = questionFromArgs(args, 'compare');
    // Without --method or --methods: the app's compare defaults (none against transprune-high), --schedule/--alpha applied.
    const methods = methodsFromArgs(args, [DEFAULT_SETTINGS.compare.left, DEFAULT_SETTINGS.compare.right]);
    if (methods.length < 2) throw new CliError('compare needs at least two methods: --methods none,transprune-high');
    const maxTokens = integerArg(values['max-tokens'], '--max-tokens');

    const engine = engineFromArgs(values);
    try {
      process.stderr.write(`running ${methods.map((m) => formatMethod(m)).join(', ')} (one shared prefill)...\n`);
      const compared = await engine.compare({ model, image, question, maxPixels, methods, maxTokens });
      const runs = compared.results.map((result, i) => ({ method: methods[i], result, trace: result.trace }));
      printComparison(question, runs, compared);
      if (values.trace !== undefined) {
        for (const run of runs)
          for (const path of await writeTraceFiles(run.trace, tracePath(String(values.trace), run.method)))
            console.error(`trace written to ${path}`);
      }
      return 0;
    } finally {
      await engine.unload();
    }
  },
};

type Run = { method: MethodSpec; result: AskResult; trace: Trace };

function printComparison(question: string, runs: Run[], compared: Pick<CompareResult, 'sharedLayers' | 'prefillMs'>): void {
  const labels = runs.map((r) => formatMethod(r.method));
  console.log(`\nQ: ${question}\n`);
  console.log(
    sideBySide(
      labels,
      runs.map((r) => r.result.answer),
      38,
    ),
  );
  const base = runs[0];
  const rows: string[][] = [];
  rows.push(['visual tokens', ...runs.map((r) => stageCounts(r.trace).join('→'))]);
  rows.push([
    "compute (paper's count)",
    ...runs.map((r) => formatFlopsShare(r.trace.totals.flops.paper, r.trace.totals.flops.paperUnpruned)),
  ]);
  rows.push(['compute (in full)', ...runs.map((r) => formatFlopsShare(r.trace.totals.flops.full, r.trace.totals.flops.fullUnpruned))]);
  rows.push(['prefill ms', ...runs.map((r) => r.result.stats.prefillMs.toFixed(1))]);
  rows.push([`prefill vs ${labels[0]}`, ...runs.map((r) => `${(r.result.stats.prefillMs / base.result.stats.prefillMs).toFixed(2)}x`)]);
  rows.push(['scoring ms', ...runs.map((r) => r.trace.totals.timesMs.scoring.toFixed(1))]);
  rows.push(['decode tok/s', ...runs.map((r) => r.result.stats.decodeTokensPerSec.toFixed(1))]);
  console.log('');
  printTable(['', ...labels], rows);
  const separately = runs.reduce((sum, r) => sum + r.result.stats.prefillMs, 0);
  const shared = compared.sharedLayers ? `layers 1–${compared.sharedLayers}` : 'none';
  console.log(`\nshared layers: ${compared.sharedLayers} (${shared} computed once for all methods)`);
  console.log(
    `joint prefill: ${compared.prefillMs.toFixed(1)} ms, vs ${separately.toFixed(1)} ms for the methods' prefills run separately (${(compared.prefillMs / separately).toFixed(2)}x)`,
  );
  console.log(
    "Each method's prefill ms counts the shared layers in full (what it takes alone). One run each: times include first use\n(e.g. creating probe sessions); `npm run bench -- pruning` gives steady-state ratios.",
  );
}

/** Columns of word-wrapped text under their headers. */
export function sideBySide(headers: string[], texts: string[], width: number): string {
  const columns = texts.map((t, i) => [
    headers[i],
    '-'.repeat(Math.min(width, Math.max(headers[i].length, 3))),
    ...wrap(t || '(empty answer)', width),
  ]);
  const height = Math.max(...columns.map((c) => c.length));
  return Array.from({ length: height }, (_, row) =>
    columns
      .map((c) => (c[row] ?? '').padEnd(width))
      .join('  ')
      .trimEnd(),
  ).join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    for (let w = word; w; w = w.slice(width)) {
      const piece = w.slice(0, width);
      if (line && line.length + 1 + piece.length > width) {
        lines.push(line);
        line = '';
      }
      line = line ? `${line} ${piece}` : piece;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** out.json -> out.<method>.json (one trace per method). */
function tracePath(path: string, method: MethodSpec): string {
  const safe = formatMethod(method).replace(/[^a-z0-9.=-]+/gi, '_');
  return join(dirname(path), `${basename(path, extname(path))}.${safe}${extname(path) || '.json'}`);
}
