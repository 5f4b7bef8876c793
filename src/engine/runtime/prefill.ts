import type { PositionPolicy } from '../../shared/pruning.js';
import type { LayerBoundary, PruningMethod } from '../pruning/types.js';
import { disposeCache, embedTokens, emptyCache, lastTokenLogits, runLayer, runProbe, type LayerCache, type ModelSessions } from './graphs.js';

/**
 * Prefill, one decoder layer at a time, so that a pruning method can shorten the visual block between
 * layers (docs/architecture.md, "Runtime <-> pruning seam"). Each layer keeps the cache of the sequence
 * it saw, so layers after a prune hold shorter caches; decode continues from those.
 */

export interface VisualTokens {
  /** Projected visual tokens [count, D] as the vision graph produced them. */
  features: Float32Array;
  count: number;
}

export interface PrefillInput {
  /** The prompt's token ids; the image placeholder (if any) appears exactly once. */
  ids: readonly number[];
  /** The placeholder's id; required with `visual`. */
  imageTokenId?: number;
  visual?: VisualTokens;
}

export interface PrefillOptions {
  method?: PruningMethod;
  positions?: PositionPolicy;
  signal?: AbortSignal;
  /** Sees every layer's output before any pruning of it (parity tests, the inspector). */
  onLayerOutput?(layer: number, hidden: Float32Array, seqLen: number): void;
}

export interface PrefillResult {
  /** Per-layer caches; layer l holds `cacheLength[l]` positions. */
  caches: LayerCache[];
  cacheLength: number[];
  /** Position of the first decode token in each layer (compact: its cache length; original: the entry length). */
  nextPosition: number[];
  /** Sequence length entering the first layer. */
  entryLength: number;
  logits: Float32Array;
  /** Visual tokens entering each layer, and entering the LLM at all. */
  visualCounts: number[];
  originalVisualCount: number;
  /** Original grid index of each visual token still in the sequence at the end. */
  keptOriginal: Int32Array;
  layerMs: number[];
  embedMs: number;
  headMs: number;
}

/** The live sequence between layers: hidden states and positions, with the visual block's place. */
interface Sequence {
  hidden: Float32Array;
  positions: number[];
  visualStart: number;
  keptOriginal: Int32Array;
}

export class PrefillCancelled extends Error {
  constructor() {
    super('cancelled during prefill');
  }
}

export async function prefill(model: ModelSessions, input: PrefillInput, options: PrefillOptions = {}): Promise<PrefillResult> {
  const { dims } = model;
  const { method, signal } = options;
  const policy = options.positions ?? 'compact';
  let t = performance.now();
  let seq = await embedSequence(model, input, method);
  const embedMs = performance.now() - t;
  const originalVisualCount = input.visual?.count ?? 0;
  const entryLength = seq.positions.length;

  const caches: LayerCache[] = [];
  const cacheLength: number[] = [];
  const visualCounts: number[] = [];
  const layerMs: number[] = [];
  try {
    for (let layer = 0; layer < dims.numLayers; layer++) {
      if (signal?.aborted) throw new PrefillCancelled();
      t = performance.now();
      const seqLen = seq.positions.length;
      const withSide = method?.wantsSideOutputs(layer) ?? false;
      const out = await runLayer(model, layer, seq.hidden, seq.positions, emptyCache(dims), withSide);
      caches.push(out.cache);
      cacheLength.push(seqLen);
      visualCounts.push(seq.keptOriginal.length);
      options.onLayerOutput?.(layer, out.hidden, seqLen);
      const current: Sequence = { ...seq, hidden: out.hidden };
      const kept = method ? await method.afterLayer(boundary(model, layer, current, originalVisualCount, out.side)) : null;
      seq = kept ? keepVisual(current, kept, dims.hidden, policy) : current;
      layerMs.push(performance.now() - t);
    }
  } catch (err) {
    caches.forEach(disposeCache); // device memory on GPU providers
    throw err;
  }

  t = performance.now();
  const logits = await lastTokenLogits(model, seq.hidden);
  const headMs = performance.now() - t;
  const nextPosition = policy === 'compact' ? [...cacheLength] : cacheLength.map(() => entryLength);
  return { caches, cacheLength, nextPosition, entryLength, logits, visualCounts, originalVisualCount, keptOriginal: seq.keptOriginal, layerMs, embedMs, headMs };
}

/** Text embeddings with the visual tokens spliced in at the placeholder (after any projector-side selection). */
async function embedSequence(model: ModelSessions, input: PrefillInput, method?: PruningMethod): Promise<Sequence> {
  const d = model.dims.hidden;
  const at = input.imageTokenId === undefined ? -1 : input.ids.indexOf(input.imageTokenId);
  if (input.visual && at < 0) throw new Error('the prompt has an image but no image placeholder token');
  if (!input.visual && at >= 0) throw new Error('the prompt has an image placeholder but no image');
  if (at >= 0 && input.ids.indexOf(input.imageTokenId!, at + 1) >= 0) throw new Error('the prompt has more than one image placeholder; one image per prompt is supported');

  const textIds = at < 0 ? [...input.ids] : [...input.ids.slice(0, at), ...input.ids.slice(at + 1)];
  const text = await embedTokens(model, textIds);
  if (!input.visual) return { hidden: text, positions: range(textIds.length), visualStart: 0, keptOriginal: new Int32Array(0) };

  const { features, count } = input.visual;
  const selected = method?.selectBeforeLLM?.(features, count, d) ?? null;
  const keptOriginal = selected ? Int32Array.from(selected) : Int32Array.from(range(count));
  const visual = selected ? gatherRows(features, d, selected) : features;
  const hidden = new Float32Array(text.length + visual.length);
  hidden.set(text.subarray(0, at * d), 0);
  hidden.set(visual, at * d);
  hidden.set(text.subarray(at * d), at * d + visual.length);
  return { hidden, positions: range(textIds.length + keptOriginal.length), visualStart: at, keptOriginal };
}

function boundary(model: ModelSessions, layer: number, seq: Sequence, originalVisualCount: number, side: LayerBoundary['side']): LayerBoundary {
  return {
    layer,
    numLayers: model.dims.numLayers,
    originalVisualCount,
    visualStart: seq.visualStart,
    visualCount: seq.keptOriginal.length,
    seqLen: seq.positions.length,
    keptOriginal: seq.keptOriginal,
    side,
    probe: (probeLayer, queryStart) => runProbe(model, probeLayer, seq.hidden, seq.positions, queryStart),
  };
}

/** Drops the visual tokens not in `kept` (ascending indices into the visual block) from hidden and positions. */
function keepVisual(seq: Sequence, kept: Int32Array, d: number, policy: PositionPolicy): Sequence {
  const count = seq.keptOriginal.length;
  for (let i = 0; i < kept.length; i++) {
    if (kept[i] < 0 || kept[i] >= count || (i > 0 && kept[i] <= kept[i - 1])) throw new Error(`pruning returned invalid kept indices (must be ascending within 0..${count - 1})`);
  }
  const rows = [...range(seq.visualStart), ...Array.from(kept, (k) => seq.visualStart + k), ...range(seq.positions.length - seq.visualStart - count).map((i) => seq.visualStart + count + i)];
  return {
    hidden: gatherRows(seq.hidden, d, rows),
    positions: policy === 'compact' ? range(rows.length) : rows.map((r) => seq.positions[r]),
    visualStart: seq.visualStart,
    keptOriginal: Int32Array.from(kept, (k) => seq.keptOriginal[k]),
  };
}

export function gatherRows(matrix: Float32Array, cols: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * cols);
  for (let i = 0; i < rows.length; i++) out.set(matrix.subarray(rows[i] * cols, (rows[i] + 1) * cols), i * cols);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
