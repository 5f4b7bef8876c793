// Float64 reference of the PRUNED LLaVA forward: TransPrune exactly as method spec §9 (with the
// released code's details from §2-§5), FastV (peer-pruning §2.1) and PDrop (§2.3). Independent of src/engine:
// it reuses only the unpruned reference layers in ./reference.ts and is written in the same plain style.
//
// Layer numbers in method options are 1-BASED (as in the paper and src/shared/pruning.ts): "prune 7"
// removes tokens after decoder layer 7, i.e. 0-based layer 6. Arrays in results are 0-based.
import { gatherRows, row, softmaxInPlace, type Mat } from './reference-math.js';
import {
  argmax,
  range,
  referenceDecoderLayer,
  referenceEmbed,
  referenceEmbedPrompt,
  referenceHead,
  referenceProbe,
  type LayerCache,
  type PromptInput,
  type ReferenceModel,
  type SideOutputs64,
} from './reference.js';

export interface ReferenceTransPrune {
  kind: 'transprune';
  /** 1-based layers whose TTV is accumulated. */
  accumulate: number[];
  /** 1-based layers after which visual tokens are removed (ascending, < number of layers). */
  prune: number[];
  /** Fraction of the ORIGINAL N kept after each prune layer: k = max(1, floor(N * r)). */
  ratios: number[];
  /** Score = alpha * TTV + (1 - alpha) * IGA; default 0.5. */
  alpha?: number;
  /** 'code' = released 1 - cos (default), 'paper' = Eq. 2's 1 - |cos|. */
  direction?: 'code' | 'paper';
  positions?: 'compact' | 'original';
}

export interface ReferenceFastV {
  kind: 'fastv';
  /** Prune after 1-based layer K, ranking by layer K's attention from the last token (mean over heads). */
  k: number;
  /** Fraction removed: keep max(1, floor(N * (1 - r))). */
  r: number;
  positions?: 'compact' | 'original';
}

export interface ReferencePDrop {
  kind: 'pdrop';
  /** 1-based stage boundaries (LLaVA-1.5: 8, 16, 24); after boundary s keep max(1, floor(N * lambda^s)). */
  layers: number[];
  lambda: number;
  positions?: 'compact' | 'original';
}

export type ReferenceMethod = ReferenceTransPrune | ReferenceFastV | ReferencePDrop | { kind: 'none' };

export interface ReferenceStage {
  /** 1-based layer after which this stage pruned. */
  layer: number;
  /** Original grid indices (0..N-1) kept, ascending. */
  keptOriginal: Int32Array;
  /** Scores over the visual tokens entering this stage (TransPrune: L1-normalized TTV and IGA). */
  ttv?: Float64Array;
  iga?: Float64Array;
  score: Float64Array;
}

export interface PrunedRun {
  visualStart: number;
  /** N, visual tokens from the vision tower. */
  originalVisualCount: number;
  stages: ReferenceStage[];
  /** Visual tokens in the sequence each layer ran with (0-based layer index). */
  visualCountPerLayer: number[];
  /** Sequence length each layer ran with = its KV-cache length after prefill. */
  prefillLenPerLayer: number[];
  /** Positions each layer ran with in prefill. */
  positionsPerLayer: number[][];
  /** [0] = embeddings, [l+1] = output of layer l as it ran (before a prune after it). */
  hiddenStates: Mat[];
  side: SideOutputs64[];
  /** Prefill logits over the final (pruned) sequence: [S_final, V]. */
  logits: Mat;
  /** Greedy tokens, decoded with per-layer KV caches (no pruning during decode). */
  tokens: number[];
  stepLogits: Float64Array[];
  /** Position of decode step t (1-based) in 0-based layer l: decodePosition(l, t). */
  decodePosition(layer: number, step: number): number;
}

/** Indices of the k largest scores, ascending (raster order). Ties: the lower index wins. */
export function topkAscending(scores: ArrayLike<number>, k: number): Int32Array {
  const order = range(0, scores.length).sort((a, b) => scores[b] - scores[a] || a - b);
  return Int32Array.from(order.slice(0, k)).sort();
}

export function keepCountOf(n: number, ratio: number): number {
  return Math.max(1, Math.min(n, Math.floor(n * ratio)));
}

/** x / (sum(x) + 1e-8): the released code's L1 normalization over the current visual tokens. */
function l1Normalize(values: Float64Array): Float64Array {
  const sum = values.reduce((s, v) => s + v, 0);
  return values.map((v) => v / (sum + 1e-8));
}

/**
 * One module's TTV over all S tokens of the layer (spec §2.2): m_t * softmax_t(direction_t), with
 * m = ||out||/||in|| and direction 1 - cos (code) or 1 - |cos| (paper); one softmax over the whole sequence.
 */
export function moduleTtv(ratio: Float64Array, cos: Float64Array, direction: 'code' | 'paper'): Float64Array {
  const weights = cos.map((c) => (direction === 'code' ? 1 - c : 1 - Math.abs(c)));
  softmaxInPlace(weights);
  return weights.map((w, t) => w * ratio[t]);
}

/** The state a method sees after a layer: what it needs to choose, no more. */
interface Boundary {
  layer: number; // 0-based layer just run
  input: Mat; // that layer's input
  output: Mat; // its output
  positions: number[];
  side: SideOutputs64;
  visualStart: number;
  visualCount: number;
  originalVisualCount: number;
}

type Chooser = (b: Boundary) => (Omit<ReferenceStage, 'keptOriginal' | 'layer'> & { keep: Int32Array }) | null;

function transPruneChooser(model: ReferenceModel, m: ReferenceTransPrune): Chooser {
  const alpha = m.alpha ?? 0.5;
  const direction = m.direction ?? 'code';
  const stored = new Map<number, Float64Array>(); // 1-based layer -> TTV of the current visual tokens
  return (b) => {
    const layer = b.layer + 1;
    const visual = (v: Float64Array) => v.slice(b.visualStart, b.visualStart + b.visualCount);
    if (m.accumulate.includes(layer)) {
      const attn = moduleTtv(b.side.attnRatio, b.side.attnCos, direction);
      const mlp = moduleTtv(b.side.mlpRatio, b.side.mlpCos, direction);
      stored.set(layer, visual(attn.map((a, t) => a + mlp[t])));
    }
    const stage = m.prune.indexOf(layer);
    if (stage < 0) return null;
    if (layer >= model.text.layers)
      throw new Error(`reference: cannot prune after the last layer (${layer}); IGA needs layer ${layer + 1}`);
    const queryStart = b.visualStart + b.visualCount;
    if (queryStart >= b.output.rows) throw new Error('reference: IGA needs instruction tokens after the image');

    const accumulated = new Float64Array(b.visualCount);
    for (const [l, ttv] of stored) if (l <= layer) ttv.forEach((v, t) => (accumulated[t] += v));
    const ttv = l1Normalize(accumulated);
    // IGA_{p+1}: the NEXT layer's norm + q/k + RoPE over this layer's output (0-based index = layer).
    const iga = l1Normalize(visual(referenceProbe(model, layer, b.output, b.positions, queryStart)));
    const score = ttv.map((v, t) => alpha * v + (1 - alpha) * iga[t]);
    const keep = topkAscending(score, keepCountOf(b.originalVisualCount, m.ratios[stage]));
    for (const [l, v] of stored)
      stored.set(
        l,
        Float64Array.from(keep, (i) => v[i]),
      ); // re-index to the survivors
    return { keep, ttv, iga, score };
  };
}

function fastVChooser(model: ReferenceModel, m: ReferenceFastV): Chooser {
  return (b) => {
    if (b.layer + 1 !== m.k) return null;
    // Layer K's own attention: its norm + q/k + RoPE over its input, the last token as the only query.
    const attention = referenceProbe(model, b.layer, b.input, b.positions, b.input.rows - 1);
    const score = attention.slice(b.visualStart, b.visualStart + b.visualCount);
    return { keep: topkAscending(score, keepCountOf(b.originalVisualCount, 1 - m.r)), score };
  };
}

function pDropChooser(model: ReferenceModel, m: ReferencePDrop): Chooser {
  return (b) => {
    const stage = m.layers.indexOf(b.layer + 1);
    if (stage < 0) return null;
    // The next layer's norm + q/k + RoPE over this layer's output, the last token as the only query.
    const attention = referenceProbe(model, b.layer + 1, b.output, b.positions, b.output.rows - 1);
    const score = attention.slice(b.visualStart, b.visualStart + b.visualCount);
    return { keep: topkAscending(score, keepCountOf(b.originalVisualCount, m.lambda ** (stage + 1))), score };
  };
}

function chooserFor(model: ReferenceModel, method: ReferenceMethod): Chooser {
  if (method.kind === 'transprune') return transPruneChooser(model, method);
  if (method.kind === 'fastv') return fastVChooser(model, method);
  if (method.kind === 'pdrop') return pDropChooser(model, method);
  return () => null;
}

export interface PrunedOptions extends PromptInput {
  /** Greedy tokens to generate after the prefill (default 0). */
  maxNewTokens?: number;
  eosTokenId?: number;
}

/**
 * The whole pruned forward (B = 1): prefill layer by layer, pruning the visual block between layers
 * as `method` decides (prefill only), then greedy decoding with per-layer KV caches of different
 * lengths. Positions: 'compact' (default) renumbers 0..S'-1 after each prune and decode step t uses
 * prefillLen[l] + t - 1 in layer l; 'original' keeps each token's original position and decode uses S0 + t - 1.
 */
export function referencePrunedForward(model: ReferenceModel, input: PrunedOptions, method: ReferenceMethod): PrunedRun {
  const policy = method.kind === 'none' ? 'compact' : (method.positions ?? 'compact');
  const choose = chooserFor(model, method);
  const prompt = referenceEmbedPrompt(model, input);
  const N = prompt.visualCount;
  const S0 = prompt.embeds.rows;

  let x = prompt.embeds;
  let positions = range(0, S0);
  let kept = Int32Array.from(range(0, N));
  const run: Omit<PrunedRun, 'logits' | 'tokens' | 'stepLogits' | 'decodePosition'> = {
    visualStart: prompt.visualStart,
    originalVisualCount: N,
    stages: [],
    visualCountPerLayer: [],
    prefillLenPerLayer: [],
    positionsPerLayer: [],
    hiddenStates: [x],
    side: [],
  };
  const caches: LayerCache[] = [];
  for (let l = 0; l < model.text.layers; l++) {
    run.visualCountPerLayer.push(kept.length);
    run.prefillLenPerLayer.push(x.rows);
    run.positionsPerLayer.push(positions);
    const r = referenceDecoderLayer(model, l, x, positions, null);
    caches.push(r.present);
    run.hiddenStates.push(r.out);
    run.side.push(r.side);
    const choice =
      kept.length > 0
        ? choose({
            layer: l,
            input: x,
            output: r.out,
            positions,
            side: r.side,
            visualStart: prompt.visualStart,
            visualCount: kept.length,
            originalVisualCount: N,
          })
        : null;
    x = r.out;
    if (!choice) continue;
    const { keep, ...scores } = choice;
    const rows = [
      ...range(0, prompt.visualStart),
      ...Array.from(keep, (i) => prompt.visualStart + i),
      ...range(prompt.visualStart + kept.length, x.rows),
    ];
    x = gatherRows(x, rows);
    positions = policy === 'compact' ? range(0, rows.length) : rows.map((i) => positions[i]);
    kept = Int32Array.from(keep, (i) => kept[i]);
    run.stages.push({ layer: l + 1, keptOriginal: kept, ...scores });
  }

  const logits = referenceHead(model, x);
  const decodePosition = (layer: number, step: number) => (policy === 'compact' ? run.prefillLenPerLayer[layer] : S0) + step - 1;
  const tokens: number[] = [];
  const stepLogits: Float64Array[] = [];
  let last = row(logits, logits.rows - 1).slice();
  for (let step = 1; step <= (input.maxNewTokens ?? 0); step++) {
    const next = argmax(last);
    tokens.push(next);
    stepLogits.push(last);
    if (next === input.eosTokenId || step === input.maxNewTokens) break;
    let h = referenceEmbed(model, [next]);
    for (let l = 0; l < model.text.layers; l++) {
      const r = referenceDecoderLayer(model, l, h, [decodePosition(l, step)], caches[l]);
      caches[l] = r.present;
      h = r.out;
    }
    last = row(referenceHead(model, h), 0).slice();
  }
  return { ...run, logits, tokens, stepLogits, decodePosition };
}
