import type { MethodSpec } from '../../shared/pruning.js';
import type { VqaItem } from '../data/vqa.js';
import type { Engine } from '../runtime/engine.js';
import { isExactMatch, mean, tallyByFamily, type Tally } from './metrics.js';
import { addKept, emptyPositions, type KeptPositions } from './positions.js';

/**
 * The evaluation loop: every item is asked under every method, greedily, through the same Engine the
 * app uses. Items run in the outer loop so each image is encoded once (the engine caches vision
 * output) and the methods' prefill timings are interleaved rather than taken minutes apart. An item
 * the engine refuses (a corrupt image, say) is recorded as a wrong answer with its error, and the run
 * goes on: a long benchmark is not lost to one bad file.
 */

export type EvalItem = VqaItem & { imagePath: string };

export interface EvalOptions {
  model: string;
  items: readonly EvalItem[];
  /** `name` is how tables and charts show the method (the user's spelling, e.g. "ttv"). */
  methods: ReadonlyArray<{ name: string; spec: MethodSpec }>;
  /** Answers are one word or a short phrase. */
  maxTokens?: number;
  onProgress?(done: number, total: number): void;
  signal?: AbortSignal;
  /** Count where on the grid each method's kept tokens sit, from each answer's trace (positions.ts). */
  positions?: boolean;
}

export interface Prediction {
  id: string;
  family: string;
  method: string;
  answer: string;
  prediction: string;
  correct: boolean;
  prefillMs: number;
  visualKept: number;
  /** Paper convention: multiply-accumulates of the decoder over visual tokens only (method spec §6.1). */
  tflopsPaper: number;
  /** Real floating-point operations of the whole prefill (2 per multiply-accumulate, all tokens). */
  tflopsFull: number;
  /** Why the engine gave no answer; timing and FLOPs are NaN then and left out of the means. */
  error?: string;
}

export interface MethodSummary {
  method: string;
  spec: MethodSpec;
  overall: Tally;
  perFamily: Record<string, Tally>;
  errors: number;
  meanPrefillMs: number;
  meanVisualKept: number;
  tflopsPaper: number;
  tflopsFull: number;
}

export interface EvalReport {
  model: { id: string; numLayers: number; hidden: number };
  provider: string;
  items: number;
  methods: MethodSummary[];
  predictions: Prediction[];
  /** Per method, with `positions`: grid indices of the visual tokens kept after the last stage. */
  positions?: Record<string, KeptPositions>;
}

export async function runEval(engine: Engine, opts: EvalOptions): Promise<EvalReport> {
  const loaded = await engine.ensureModel(opts.model);
  const predictions: Prediction[] = [];
  const total = opts.items.length * opts.methods.length;
  const positions = opts.positions
    ? Object.fromEntries(opts.methods.map((m) => [m.name, emptyPositions(loaded.manifest.patchGrid ?? { rows: 0, cols: 0 })]))
    : undefined;
  for (const item of opts.items) {
    for (const method of opts.methods) {
      if (opts.signal?.aborted) throw new Error('evaluation cancelled');
      const base = { id: item.id, family: item.family, method: method.name, answer: item.answer };
      try {
        const result = await engine.ask(
          {
            model: opts.model,
            image: item.imagePath,
            question: item.question,
            method: method.spec,
            maxTokens: opts.maxTokens ?? 16,
            sampling: { temperature: 0 },
          },
          { signal: opts.signal },
        );
        if (positions) addKept(positions[method.name], result.trace);
        predictions.push({
          ...base,
          prediction: result.answer.trim(),
          correct: isExactMatch(result.answer, item.answer),
          prefillMs: result.stats.prefillMs,
          visualKept: result.stats.visualTokensKept,
          tflopsPaper: result.trace.totals.flops.paper / 1e12,
          tflopsFull: result.trace.totals.flops.full / 1e12,
        });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        predictions.push({
          ...base,
          prediction: '',
          correct: false,
          prefillMs: NaN,
          visualKept: NaN,
          tflopsPaper: NaN,
          tflopsFull: NaN,
          error: (err as Error).message,
        });
      }
      opts.onProgress?.(predictions.length, total);
    }
  }
  return {
    model: { id: loaded.info.id, numLayers: loaded.dims.numLayers, hidden: loaded.dims.hidden },
    provider: loaded.provider.active,
    items: opts.items.length,
    methods: opts.methods.map(({ name, spec }) =>
      summarize(
        name,
        spec,
        predictions.filter((p) => p.method === name),
      ),
    ),
    predictions,
    ...(positions ? { positions } : {}),
  };
}

function summarize(method: string, spec: MethodSpec, predictions: Prediction[]): MethodSummary {
  const { overall, perFamily } = tallyByFamily(predictions);
  const answered = predictions.filter((p) => p.error === undefined);
  return {
    method,
    spec,
    overall,
    perFamily,
    errors: predictions.length - answered.length,
    meanPrefillMs: mean(answered.map((p) => p.prefillMs)),
    meanVisualKept: mean(answered.map((p) => p.visualKept)),
    tflopsPaper: mean(answered.map((p) => p.tflopsPaper)),
    tflopsFull: mean(answered.map((p) => p.tflopsFull)),
  };
}
