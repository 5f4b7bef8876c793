import { formatMethod, parseMethod } from '../../shared/pruning.js';
import { stageCounts } from '../../shared/trace.js';
import { LoadedModel } from '../../engine/runtime/model.js';
import { benchPack, benchPrompt, tracedPrefill, type BenchArch, type TracedPrefill } from './engine.js';
import { median } from './gemm.js';
import { integerOr, providerFromArgs, providerOptions } from '../run-options.js';
import { printTable } from '../table.js';
import { writeBenchResult } from './results.js';
import { modelShapeOptions, type BenchSuite } from './suite.js';

/**
 * `bench pruning`: every method's prefill on one 576-visual-token model made for the run,
 * timed in the same process and interleaved round by round so drift hits all methods alike; the
 * table reports each method's fastest round. Reports
 * prefill time relative to `none`, the paper-convention and full FLOPs ratios from the real per-layer
 * counts (via the trace recorder, as the app records them), and the scoring overhead (TTV, probes,
 * top-k, DivPrune) as a share of the pruned prefill.
 */

/** One round of one method: its time and trace (not the prefill result, which holds every layer's KV cache). */
type Sample = Pick<TracedPrefill, 'prefillMs' | 'trace'>;

const DEFAULT_METHODS = [
  'none',
  'transprune-high',
  'transprune-low',
  'ttv',
  'iga',
  'fastv:k=2,r=0.5',
  'fastv:k=2,r=0.75',
  'pdrop',
  'random',
  'divprune:ratio=0.5+transprune-high',
];

export const pruningBench: BenchSuite = {
  summary: 'prefill time, FLOPs ratios and scoring overhead of every pruning method against none, in one run',
  usage: 'bench pruning [--arch llava|llava-next] [--hidden 512] [--layers 12] [--runs 3] [--method M]... [--threads n] [--ep cpu]',
  options: {
    arch: { type: 'string' },
    ...modelShapeOptions,
    method: { type: 'string', multiple: true },
    ...providerOptions,
  },
  async run(values) {
    const shape = {
      hidden: integerOr(values.hidden, '--hidden', 512),
      layers: integerOr(values.layers, '--layers', 12),
      dtype: 'fp32' as const,
      arch: benchArch(values.arch),
    };
    const runs = integerOr(values.runs, '--runs', 3);
    const { ep, threads } = providerFromArgs(values, 'cpu');
    const names = (values.method as string[] | undefined) ?? DEFAULT_METHODS;
    const specs = [parseMethod('none'), ...names.filter((n) => n !== 'none').map(parseMethod)];
    const model = await LoadedModel.load(await benchPack(shape), { ep, threads });
    try {
      const input = await benchPrompt(model);
      for (const spec of specs) await tracedPrefill(model, input, spec); // warm-up: sessions, probe graphs, shapes
      const samples = specs.map((): Sample[] => []);
      // Each round starts at a different method, so no method always follows the same neighbour.
      for (let round = 0; round < runs; round++) {
        for (let j = 0; j < specs.length; j++) {
          const i = (round + j) % specs.length;
          const { prefillMs, trace } = await tracedPrefill(model, input, specs[i]);
          samples[i].push({ prefillMs, trace });
        }
      }

      const rows = specs.map((spec, i) => {
        // The fastest round is the one least disturbed by other work on the machine; its scoring time
        // comes from the same prefill, so the share is consistent. Medians go to the JSON too.
        const fastest = samples[i].reduce((a, b) => (b.prefillMs < a.prefillMs ? b : a));
        const { flops } = fastest.trace.totals;
        return {
          method: formatMethod(spec),
          visualTokens: stageCounts(fastest.trace),
          prefillMs: fastest.prefillMs,
          scoringMs: fastest.trace.totals.timesMs.scoring,
          medianPrefillMs: median(samples[i].map((s) => s.prefillMs)),
          paperRatio: flops.paper / flops.paperUnpruned,
          fullRatio: flops.full / flops.fullUnpruned,
          flops,
        };
      });
      const base = rows[0].prefillMs;
      console.log(
        `\nbench pruning (${shape.arch}): ${shape.layers} layers, hidden ${shape.hidden}, ${input.visual.count} visual + ${input.ids.length - 1} text tokens, provider ${model.provider.active}, fastest of ${runs} rounds\n`,
      );
      printTable(
        ['method', 'visual tokens', 'prefill ms', 'vs none', 'paper FLOPs', 'full FLOPs', 'scoring ms', 'scoring share'],
        rows.map((r) => [
          r.method,
          r.visualTokens.join('→'),
          r.prefillMs,
          `${(r.prefillMs / base).toFixed(2)}x`,
          pct(r.paperRatio),
          pct(r.fullRatio),
          r.scoringMs,
          pct(r.scoringMs / r.prefillMs),
        ]),
      );
      console.log(
        '\npaper FLOPs: Eq. 7 MACs over visual tokens only; full: all FLOPs of the prefill incl. vision and scoring. Aim: scoring share <= 3%.' +
          '\nscoring: wall time in the method; a probe includes the k_proj rows the next layer then takes instead of projecting them.',
      );
      const path = await writeBenchResult('pruning', {
        shape,
        runs,
        provider: model.provider,
        threads: threads ?? null,
        textTokens: input.ids.length - 1,
        rows,
        samplesMs: samples.map((s) => s.map((x) => x.prefillMs)),
      });
      console.log(`written ${path}`);
    } finally {
      await model.dispose();
    }
  },
};

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function benchArch(value: unknown): BenchArch {
  if (value === undefined || value === 'llava' || value === 'llava-next') return value ?? 'llava';
  throw new Error(`--arch must be llava or llava-next, not ${String(value)}`);
}
