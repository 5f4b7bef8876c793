import type { PositionPolicy } from '../../shared/pruning.js';
import type { LayerBoundary, PruningMethod } from '../pruning/types.js';
import {
  disposeCache,
  embedTokens,
  emptyCache,
  lastTokenLogits,
  runLayer,
  runProbe,
  shareCache,
  type LayerCache,
  type ModelSessions,
} from './graphs.js';

/**
 * Prefill, one decoder layer at a time, so that a pruning method can shorten the visual block between
 * layers (docs/architecture.md, "Runtime <-> pruning seam"). Each layer keeps the cache of the sequence
 * it saw, so layers after a prune hold shorter caches; decode continues from those. Several methods
 * can prefill together (compare), sharing the layers where their sequences are still the same.
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

/** One way of running the prompt: a pruning method (none: every token to the end) and its position policy. */
export interface PrefillBranch {
  method?: PruningMethod;
  positions?: PositionPolicy;
  /** Sees every layer's output before any pruning of it (parity tests, the inspector). */
  onLayerOutput?(layer: number, hidden: Float32Array, seqLen: number): void;
}

export interface PrefillOptions extends PrefillBranch {
  signal?: AbortSignal;
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

export interface BranchedPrefill {
  /** One result per branch, in the order given; each owns its caches (disposing one leaves the others intact). */
  branches: PrefillResult[];
  /** Leading layers run once for all branches (every layer when there is one branch). */
  sharedLayers: number;
}

/** A branch's own record of the layers it went through. */
interface BranchState {
  branch: PrefillBranch;
  policy: PositionPolicy;
  caches: LayerCache[];
  cacheLength: number[];
  visualCounts: number[];
  layerMs: number[];
}

/** Branches whose sequences are identical so far (same tokens, same positions): one layer run serves them all. */
interface Group {
  seq: Sequence;
  members: BranchState[];
}

/** The prefill of one method: the one-branch case of prefillBranches. */
export async function prefill(model: ModelSessions, input: PrefillInput, options: PrefillOptions = {}): Promise<PrefillResult> {
  const { signal, ...branch } = options;
  return (await prefillBranches(model, input, [branch], { signal })).branches[0];
}

/**
 * Prefills the prompt for several methods at once: each layer runs once per group of branches whose
 * sequences are still identical, every branch's method sees every boundary, and a branch forks into its
 * own group when its method prunes (branches that keep exactly the same tokens stay together). For
 * `none` vs a pruning method, the layers before the first prune are computed once (compare).
 */
export async function prefillBranches(
  model: ModelSessions,
  input: PrefillInput,
  branches: readonly PrefillBranch[],
  options: { signal?: AbortSignal } = {},
): Promise<BranchedPrefill> {
  const { dims } = model;
  const states: BranchState[] = branches.map((branch) => ({
    branch,
    policy: branch.positions ?? 'compact',
    caches: [],
    cacheLength: [],
    visualCounts: [],
    layerMs: [],
  }));
  const start = performance.now();
  let groups = await embedGroups(model, input, states);
  const embedMs = performance.now() - start;
  const originalVisualCount = input.visual?.count ?? 0;
  const entryLength = groups[0].seq.positions.length;

  const created: LayerCache[] = [];
  let sharedLayers = 0;
  try {
    for (let layer = 0; layer < dims.numLayers; layer++) {
      if (options.signal?.aborted) throw new PrefillCancelled();
      if (groups.length === 1) sharedLayers++;
      const next: Group[] = [];
      for (const group of groups) next.push(...(await runGroupLayer(model, layer, group, originalVisualCount, created)));
      groups = next;
    }
  } catch (err) {
    created.forEach(disposeCache); // device memory on GPU providers
    throw err;
  }

  const results = new Map<BranchState, PrefillResult>();
  const handedOut = new Set<LayerCache>();
  const own = (cache: LayerCache) => (handedOut.has(cache) ? shareCache(cache) : (handedOut.add(cache), cache));
  for (const { seq, members } of groups) {
    const t = performance.now();
    const logits = await lastTokenLogits(model, seq.hidden); // read-only, so members share it
    const headMs = performance.now() - t;
    for (const m of members) {
      const caches = await Promise.all(m.caches.map(own));
      const nextPosition = m.policy === 'compact' ? [...m.cacheLength] : m.cacheLength.map(() => entryLength);
      const { cacheLength, visualCounts, layerMs } = m;
      results.set(m, {
        caches,
        cacheLength,
        nextPosition,
        entryLength,
        logits,
        visualCounts,
        originalVisualCount,
        keptOriginal: seq.keptOriginal,
        layerMs,
        embedMs,
        headMs,
      });
    }
  }
  return { branches: states.map((s) => results.get(s)!), sharedLayers };
}

/** Embeds the prompt once; branches whose projector-side selections agree start in one group. */
async function embedGroups(model: ModelSessions, input: PrefillInput, states: BranchState[]): Promise<Group[]> {
  const text = await embedPrompt(model, input);
  const groups = new Map<string, Group>();
  for (const state of states) {
    const selected = input.visual
      ? (state.branch.method?.selectBeforeLLM?.(input.visual.features, input.visual.count, model.dims.hidden) ?? null)
      : null;
    const key = selected ? selected.join(',') : 'all';
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { seq: spliceVisual(text, input, selected, model.dims.hidden), members: [] }));
    group.members.push(state);
  }
  return [...groups.values()];
}

/**
 * Runs one layer for a group, gives each member's method the boundary (side outputs to those that asked,
 * probes computed once per group), and regroups the members by what they kept.
 */
async function runGroupLayer(
  model: ModelSessions,
  layer: number,
  group: Group,
  originalVisualCount: number,
  created: LayerCache[],
): Promise<Group[]> {
  const start = performance.now();
  const { seq, members } = group;
  const seqLen = seq.positions.length;
  const wantsSide = members.map((m) => m.branch.method?.wantsSideOutputs(layer) ?? false);
  const out = await runLayer(model, layer, seq.hidden, seq.positions, emptyCache(model.dims), wantsSide.includes(true));
  created.push(out.cache);
  const runMs = performance.now() - start;
  const current: Sequence = { ...seq, hidden: out.hidden };
  const probe = memoizedProbe(model, current);

  const forks = new Map<string, Group>();
  for (const [i, m] of members.entries()) {
    const t = performance.now();
    m.caches.push(out.cache);
    m.cacheLength.push(seqLen);
    m.visualCounts.push(seq.keptOriginal.length);
    m.branch.onLayerOutput?.(layer, out.hidden, seqLen);
    const side = wantsSide[i] ? out.side : undefined;
    const kept = m.branch.method
      ? await m.branch.method.afterLayer(boundary(model, layer, current, originalVisualCount, side, probe))
      : null;
    const key = kept ? `${m.policy}:${kept.join(',')}` : 'unpruned';
    let fork = forks.get(key);
    if (!fork) forks.set(key, (fork = { seq: kept ? keepVisual(current, kept, model.dims.hidden, m.policy) : current, members: [] }));
    fork.members.push(m);
    m.layerMs.push(runMs + performance.now() - t); // as if this branch had run the layer alone
  }
  return [...forks.values()];
}

type Probe = LayerBoundary['probe'];

/** The group's probe: the same attention for every member that asks for it. */
function memoizedProbe(model: ModelSessions, seq: Sequence): Probe {
  const done = new Map<string, Promise<Float32Array>>();
  return (layer, queryStart) => {
    const key = `${layer}:${queryStart}`;
    let attention = done.get(key);
    if (!attention) done.set(key, (attention = runProbe(model, layer, seq.hidden, seq.positions, queryStart)));
    return attention;
  };
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
  if (!input.visual) return { hidden: text, positions: range(textLength), visualStart: 0, keptOriginal: new Int32Array(0) };
  const at = placeholderIndex(input);
  const { features, count } = input.visual;
  const keptOriginal = selected ? Int32Array.from(selected) : Int32Array.from(range(count));
  const visual = selected ? gatherRows(features, d, selected) : features;
  const hidden = new Float32Array(text.length + visual.length);
  hidden.set(text.subarray(0, at * d), 0);
  hidden.set(visual, at * d);
  hidden.set(text.subarray(at * d), at * d + visual.length);
  return { hidden, positions: range(textLength + keptOriginal.length), visualStart: at, keptOriginal };
}

function boundary(
  model: ModelSessions,
  layer: number,
  seq: Sequence,
  originalVisualCount: number,
  side: LayerBoundary['side'],
  probe: Probe,
): LayerBoundary {
  return {
    layer,
    numLayers: model.dims.numLayers,
    originalVisualCount,
    visualStart: seq.visualStart,
    visualCount: seq.keptOriginal.length,
    seqLen: seq.positions.length,
    keptOriginal: seq.keptOriginal,
    side,
    probe,
  };
}

/** Drops the visual tokens not in `kept` (ascending indices into the visual block) from hidden and positions. */
function keepVisual(seq: Sequence, kept: Int32Array, d: number, policy: PositionPolicy): Sequence {
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
