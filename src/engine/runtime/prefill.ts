import { getOrInsert } from '../../shared/get-or-insert.js';
import type { PositionPolicy } from '../../shared/pruning.js';
import type { LayerBoundary, PruningMethod } from '../pruning/types.js';
import {
  embedTokens,
  keyWidth,
  lastTokenLogits,
  LayerCache,
  NO_IMAGE_GRID,
  runLayer,
  runProbe,
  type ModelSessions,
  type RopeGrid,
  type RuntimeDims,
} from './graphs.js';

/**
 * Prefill, one decoder layer at a time, so that a pruning method can shorten the visual block between
 * layers (docs/architecture.md, "Runtime <-> pruning seam"). Each layer keeps the cache of the sequence
 * it saw, so layers after a prune hold shorter caches; decode continues from those. `prefill` is one
 * method's pass; `prefillBranches` runs several methods in step (compare), computing each layer once for
 * the methods whose sequences are still the same.
 */

export interface VisualTokens {
  /** Projected visual tokens [count, D] as the vision graph produced them. */
  features: Float32Array;
  count: number;
  /** M-RoPE models: the tokens' grid (merged cells), row by row; their 3D positions follow from it. */
  grid?: { rows: number; cols: number };
  /** Tokens the prompt puts between the visual block and the instruction (Qwen's <|vision_end|>). */
  markersAfter?: number;
}

export interface PrefillInput {
  /** The prompt's token ids; the image placeholder (if any) appears exactly once. */
  ids: readonly number[];
  /** The placeholder's id; required with `visual`. */
  imageTokenId?: number;
  visual?: VisualTokens;
}

/** One way of running the prompt: a pruning method (none: every token to the end) and its position policy. */
export interface PrefillBranch {
  method?: PruningMethod;
  positions?: PositionPolicy;
  /** Sees every layer's output before any pruning of it (parity tests, the inspector). */
  onLayerOutput?(layer: number, hidden: Float32Array, seqLen: number): void;
}

/** What a whole prefill (one method or several) is cancelled by and reports its progress to. */
export interface PrefillControl {
  signal?: AbortSignal;
  /** Called after each decoder layer (0-based), for progress on big models. */
  onLayer?(layer: number, numLayers: number): void;
}

export interface PrefillOptions extends PrefillBranch, PrefillControl {}

export interface PrefillResult {
  /** Per-layer caches; layer l holds `cacheLength[l]` positions (until a Decoder takes them over and appends). */
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
  /** M-RoPE models: the grid each layer's positions were mapped through (compacted layers: none), which decode's follow. */
  ropeGrids: (RopeGrid | undefined)[];
}

/** The live sequence between layers: hidden states and positions, with the visual block's place. */
interface Sequence {
  hidden: Float32Array;
  positions: number[];
  visualStart: number;
  keptOriginal: Int32Array;
  /** The next layer's k_proj of these tokens, when a probe of that layer computed it: the layer reuses it. */
  nextKeyProj?: Float32Array;
  /**
   * M-RoPE models: the image block's place and grid in original sequence indices (positions are those indices). After
   * a compacting prune there is none: positions 0..S'-1 then stand for themselves on all three axes.
   */
  ropeGrid?: RopeGrid;
  markersAfterVisual?: number;
}

export class PrefillCancelled extends Error {
  constructor() {
    super('cancelled during prefill');
  }
}

/** One method's prefill: run each layer, show the method the boundary, keep what it keeps. */
export async function prefill(model: ModelSessions, input: PrefillInput, options: PrefillOptions = {}): Promise<PrefillResult> {
  const { method, positions: policy = 'compact', onLayerOutput, signal, onLayer } = options;
  const d = model.dims.hidden;
  const start = performance.now();
  let seq = spliceVisual(await embedPrompt(model, input), input, projectorSelection(input, method, d), d);
  const embedMs = performance.now() - start;
  const visual = { original: input.visual?.count ?? 0, entering: seq.keptOriginal.length };
  const entryLength = seq.positions.length;

  const layers = new LayerRecords();
  for (let layer = 0; layer < model.dims.numLayers; layer++) {
    if (signal?.aborted) throw new PrefillCancelled();
    const layerStart = performance.now();
    const wantsSide = method?.wantsSideOutputs(layer) ?? false;
    const out = await runLayer(
      model,
      layer,
      seq.hidden,
      seq.positions,
      new LayerCache(model.dims),
      wantsSide,
      seq.nextKeyProj,
      seq.ropeGrid,
    );
    layers.add(out.cache, seq);
    onLayerOutput?.(layer, out.hidden, seq.positions.length);
    const after = withHidden(seq, out.hidden);
    const probe = sequenceProbe(model, layer, after);
    const kept = method ? await method.afterLayer(boundary(model, layer, after, visual, out.side, probe)) : null;
    seq = kept ? keepVisual(after, kept, model.dims, policy) : after;
    layers.layerMs.push(performance.now() - layerStart);
    onLayer?.(layer, model.dims.numLayers);
  }

  const headStart = performance.now();
  const logits = await lastTokenLogits(model, seq.hidden);
  const end = { logits, headMs: performance.now() - headStart, keptOriginal: seq.keptOriginal };
  return layers.result(policy, { entryLength, originalVisualCount: visual.original, embedMs, ...end });
}

export interface BranchedPrefill {
  /** One result per branch, in the order given; each owns its caches (disposing one leaves the others intact). */
  branches: PrefillResult[];
  /** Leading layers run once for all branches (every layer when there is one branch). */
  sharedLayers: number;
}

/** A branch of a joint prefill: `prefill`'s state for its method. */
interface Branch {
  options: PrefillBranch;
  policy: PositionPolicy;
  /** The same object for every branch whose tokens and positions are the same: they share each layer run. */
  seq: Sequence;
  visual: { original: number; entering: number };
  layers: LayerRecords;
}

/**
 * Prefills the prompt for several methods at once (compare): `prefill` for each, in step, with every layer
 * run once per group of branches on the same sequence. Each branch's method sees every boundary (side
 * outputs when any member asked, probes computed once per group); a branch forks into its own group when
 * its method prunes, and branches that keep the same tokens under the same position policy stay together.
 * For `none` vs a pruning method, the layers before the first prune are computed once.
 */
export async function prefillBranches(
  model: ModelSessions,
  input: PrefillInput,
  branches: readonly PrefillBranch[],
  options: PrefillControl = {},
): Promise<BranchedPrefill> {
  const d = model.dims.hidden;
  const start = performance.now();
  const text = await embedPrompt(model, input);
  const entry = firstOf<Int32Array | null, Sequence>(sameIndices);
  const states: Branch[] = branches.map((branch) => {
    const selected = projectorSelection(input, branch.method, d);
    const seq = entry(selected, () => spliceVisual(text, input, selected, d));
    const visual = { original: input.visual?.count ?? 0, entering: seq.keptOriginal.length };
    return { options: branch, policy: branch.positions ?? 'compact', seq, visual, layers: new LayerRecords() };
  });
  const embedMs = performance.now() - start;
  const entryLength = states[0].seq.positions.length;

  let sharedLayers = 0;
  for (let layer = 0; layer < model.dims.numLayers; layer++) {
    if (options.signal?.aborted) throw new PrefillCancelled();
    const groups = new Map<Sequence, Branch[]>();
    for (const state of states) getOrInsert(groups, state.seq, () => []).push(state);
    if (groups.size === 1) sharedLayers++;
    for (const [seq, members] of groups) await runSharedLayer(model, layer, seq, members);
    options.onLayer?.(layer, model.dims.numLayers);
  }

  const head = firstOf<Sequence, Promise<{ logits: Float32Array; headMs: number }>>((a, b) => a === b);
  const results: PrefillResult[] = [];
  for (const { seq, policy, visual, layers } of states) {
    // Read-only, so branches that end on the same sequence share it.
    const end = await head(seq, async () => {
      const headStart = performance.now();
      const logits = await lastTokenLogits(model, seq.hidden);
      return { logits, headMs: performance.now() - headStart };
    });
    results.push(
      layers.result(policy, {
        entryLength,
        originalVisualCount: visual.original,
        embedMs,
        keptOriginal: seq.keptOriginal,
        ...end,
      }),
    );
  }
  return { branches: results, sharedLayers };
}

/** One layer for the branches on one sequence: run it once, then each branch's boundary and keep, as `prefill` does. */
async function runSharedLayer(model: ModelSessions, layer: number, seq: Sequence, members: Branch[]): Promise<void> {
  const start = performance.now();
  const wantsSide = members.map((m) => m.options.method?.wantsSideOutputs(layer) ?? false);
  const out = await runLayer(
    model,
    layer,
    seq.hidden,
    seq.positions,
    new LayerCache(model.dims),
    wantsSide.includes(true),
    seq.nextKeyProj,
    seq.ropeGrid,
  );
  const runMs = performance.now() - start;
  // Each branch holds its own cache object, so each Decoder appends to its own.
  for (const [i, m] of members.entries()) m.layers.add(i === 0 ? out.cache : out.cache.share(), seq);
  const after = withHidden(seq, out.hidden);
  const probe = sequenceProbe(model, layer, after);
  const fork = firstOf<{ policy: PositionPolicy; kept: Int32Array }, Sequence>(
    (a, b) => a.policy === b.policy && sameIndices(a.kept, b.kept),
  );
  for (const [i, m] of members.entries()) {
    const boundaryStart = performance.now();
    m.options.onLayerOutput?.(layer, out.hidden, seq.positions.length);
    const { method } = m.options;
    const side = wantsSide[i] ? out.side : undefined;
    const kept = method ? await method.afterLayer(boundary(model, layer, after, m.visual, side, probe)) : null;
    m.seq = kept ? fork({ policy: m.policy, kept }, () => keepVisual(after, kept, model.dims, m.policy)) : after;
    m.layers.layerMs.push(runMs + performance.now() - boundaryStart); // as if this branch had run the layer alone
  }
}

/** What one method's prefill leaves behind, layer by layer: the caches decode continues from, and each layer's account. */
class LayerRecords {
  readonly caches: LayerCache[] = [];
  /** Sequence length and visual tokens entering each layer. */
  readonly cacheLength: number[] = [];
  readonly visualCounts: number[] = [];
  readonly layerMs: number[] = [];
  readonly ropeGrids: (RopeGrid | undefined)[] = [];
  /** The index after the last token each layer saw. */
  readonly indexAfter: number[] = [];

  /** The next layer ran on `seq` and left `cache`. */
  add(cache: LayerCache, seq: Sequence): void {
    this.caches.push(cache);
    this.ropeGrids.push(seq.ropeGrid);
    this.indexAfter.push(seq.positions[seq.positions.length - 1] + 1);
    this.cacheLength.push(seq.positions.length);
    this.visualCounts.push(seq.keptOriginal.length);
  }

  result(
    policy: PositionPolicy,
    rest: Pick<PrefillResult, 'entryLength' | 'originalVisualCount' | 'embedMs' | 'logits' | 'headMs' | 'keptOriginal'>,
  ): PrefillResult {
    const { caches, cacheLength, visualCounts, layerMs, ropeGrids } = this;
    // M-RoPE: a layer's positions are sequence indices (original ones while its grid maps them to 3D), so decoding
    // continues after its last token's.
    const mrope = ropeGrids.some((grid) => grid !== undefined);
    const nextPosition = mrope ? [...this.indexAfter] : policy === 'compact' ? [...cacheLength] : cacheLength.map(() => rest.entryLength);
    return { caches, cacheLength, nextPosition, visualCounts, layerMs, ropeGrids, ...rest };
  }
}

type Probe = LayerBoundary['probe'];

/**
 * The sequence a layer leaves: its tokens as they entered, with their new hidden states. Not a spread of `seq`:
 * its key rows were this layer's, and the next layer's come only from a probe on the result.
 */
function withHidden(seq: Sequence, hidden: Float32Array): Sequence {
  const { positions, visualStart, keptOriginal, ropeGrid, markersAfterVisual } = seq;
  return { hidden, positions, visualStart, keptOriginal, ropeGrid, markersAfterVisual };
}

/**
 * The probe of the boundary after `layer`, on `seq`: one run per probed layer and query start, shared by every
 * branch on the sequence. A probe of the next layer leaves that layer's k_proj rows on `seq`, so the next layer
 * does not project its keys again. In a compare, a branch that pruned before another branch's probe set them
 * keeps a sequence without them (as does a later branch that keeps the same tokens): its next layer then
 * projects its keys itself, which is the same result.
 */
function sequenceProbe(model: ModelSessions, layer: number, seq: Sequence): Probe {
  const attention = firstOf<[number, number], Promise<Float32Array>>((a, b) => a[0] === b[0] && a[1] === b[1]);
  return (probeLayer, queryStart) =>
    attention([probeLayer, queryStart], async () => {
      const out = await runProbe(model, probeLayer, seq.hidden, seq.positions, queryStart, seq.ropeGrid);
      if (probeLayer === layer + 1) seq.nextKeyProj = out.keyProj;
      return out.attention;
    });
}

/** `make(key)`'s value, made once per distinct key (`same`): later equal keys get the first one. */
function firstOf<K, V>(same: (a: K, b: K) => boolean): (key: K, make: () => V) => V {
  const made: { key: K; value: V }[] = [];
  return (key, make) => {
    const hit = made.find((m) => same(m.key, key));
    if (hit) return hit.value;
    const value = make();
    made.push({ key, value });
    return value;
  };
}

function sameIndices(a: Int32Array | null, b: Int32Array | null): boolean {
  return a === b || (a !== null && b !== null && a.length === b.length && a.every((x, i) => x === b[i]));
}

/** The projector-side selection (DivPrune) of the method, if it has one: sorted indices of the visual tokens it passes on. */
function projectorSelection(input: PrefillInput, method: PruningMethod | undefined, d: number): Int32Array | null {
  return input.visual ? (method?.selectBeforeLLM?.(input.visual.features, input.visual.count, d) ?? null) : null;
}

/** The prompt's text embeddings, placeholder removed. */
async function embedPrompt(model: ModelSessions, input: PrefillInput): Promise<Float32Array> {
  const at = placeholderIndex(input);
  return embedTokens(model, at < 0 ? [...input.ids] : [...input.ids.slice(0, at), ...input.ids.slice(at + 1)]);
}

function placeholderIndex(input: PrefillInput): number {
  const at = input.imageTokenId === undefined ? -1 : input.ids.indexOf(input.imageTokenId);
  if (input.visual && at < 0) throw new Error('the prompt has an image but no image placeholder token');
  if (!input.visual && at >= 0) throw new Error('the prompt has an image placeholder but no image');
  if (at >= 0 && input.ids.indexOf(input.imageTokenId!, at + 1) >= 0)
    throw new Error('the prompt has more than one image placeholder; one image per prompt is supported');
  return at;
}

/** The entry sequence: text embeddings with the visual tokens (all, or a projector-side selection) at the placeholder. */
function spliceVisual(text: Float32Array, input: PrefillInput, selected: Int32Array | null, d: number): Sequence {
  const textLength = text.length / d;
  if (!input.visual)
    return { hidden: text, positions: range(textLength), visualStart: 0, keptOriginal: new Int32Array(0), ropeGrid: NO_IMAGE_GRID };
  const at = placeholderIndex(input);
  const { features, count } = input.visual;
  const keptOriginal = selected ? Int32Array.from(selected) : Int32Array.from(range(count));
  const visual = selected ? gatherRows(features, d, selected) : features;
  const hidden = new Float32Array(text.length + visual.length);
  hidden.set(text.subarray(0, at * d), 0);
  hidden.set(visual, at * d);
  hidden.set(text.subarray(at * d), at * d + visual.length);
  const { grid, markersAfter } = input.visual;
  const ropeGrid: RopeGrid | undefined = grid && [at, grid.rows, grid.cols];
  // M-RoPE: tokens a projector-side method passes on keep their original indices (their own 3D positions).
  const positions =
    ropeGrid && selected
      ? [...range(at), ...Array.from(selected, (k) => at + k), ...range(textLength - at).map((j) => at + count + j)]
      : range(textLength + keptOriginal.length);
  return {
    hidden,
    positions,
    visualStart: at,
    keptOriginal,
    ropeGrid,
    markersAfterVisual: markersAfter,
  };
}

function boundary(
  model: ModelSessions,
  layer: number,
  seq: Sequence,
  visual: { original: number; entering: number },
  side: LayerBoundary['side'],
  probe: Probe,
): LayerBoundary {
  return {
    layer,
    layerNumber: layer + 1,
    numLayers: model.dims.numLayers,
    originalVisualCount: visual.original,
    entryVisualCount: visual.entering,
    visualStart: seq.visualStart,
    visualCount: seq.keptOriginal.length,
    seqLen: seq.positions.length,
    keptOriginal: seq.keptOriginal,
    markersAfterVisual: seq.markersAfterVisual,
    side,
    probe,
  };
}

/** Drops the visual tokens not in `kept` (ascending indices into the visual block) from hidden, positions and key rows. */
function keepVisual(seq: Sequence, kept: Int32Array, dims: RuntimeDims, policy: PositionPolicy): Sequence {
  const count = seq.keptOriginal.length;
  for (let i = 0; i < kept.length; i++) {
    if (kept[i] < 0 || kept[i] >= count || (i > 0 && kept[i] <= kept[i - 1]))
      throw new Error(`pruning returned invalid kept indices (must be ascending within 0..${count - 1})`);
  }
  const rows = [
    ...range(seq.visualStart),
    ...Array.from(kept, (k) => seq.visualStart + k),
    ...range(seq.positions.length - seq.visualStart - count).map((i) => seq.visualStart + count + i),
  ];
  return {
    hidden: gatherRows(seq.hidden, dims.hidden, rows),
    positions: policy === 'compact' ? range(rows.length) : rows.map((r) => seq.positions[r]),
    visualStart: seq.visualStart,
    keptOriginal: Int32Array.from(kept, (k) => seq.keptOriginal[k]),
    nextKeyProj: seq.nextKeyProj && gatherRows(seq.nextKeyProj, keyWidth(dims), rows),
    // Compacted M-RoPE positions have no grid left to map through: the sequence is numbered as text.
    ropeGrid: policy === 'compact' && seq.ropeGrid ? NO_IMAGE_GRID : seq.ropeGrid,
    markersAfterVisual: seq.markersAfterVisual,
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
