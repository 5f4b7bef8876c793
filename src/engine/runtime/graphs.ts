import { Tensor, type InferenceSession } from 'onnxruntime-node';
import type { SideOutputs } from '../pruning/types.js';

/**
 * The one place that knows the pack graphs' input and output names (docs/architecture.md, "Model
 * pack"). Everything else in the runtime calls these typed wrappers. Batch is always 1.
 */

/** The shapes the runtime allocates with: KV caches, hidden states, logits. */
export interface RuntimeDims {
  numLayers: number;
  hidden: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** M-RoPE (Qwen2.5-VL): the layer and probe graphs also take `rope_grid` (see mropePositions in onnx/blocks.ts). */
  mrope?: boolean;
}

/** All the runtime asks of a session (benchmarks wrap it to time every run). */
export type RunnableSession = Pick<InferenceSession, 'run'>;

/** The sessions of one model pack; probes are created on first use. */
export interface ModelSessions {
  readonly dims: RuntimeDims;
  readonly embed: RunnableSession;
  /** Null for a text-only model. */
  readonly vision: RunnableSession | null;
  readonly layers: readonly RunnableSession[];
  readonly head: RunnableSession;
  probe(layer: number): Promise<RunnableSession>;
}

export interface LayerOutput {
  hidden: Float32Array;
  /** The layer's cache, the new tokens appended. */
  cache: LayerCache;
  side?: SideOutputs;
}

export const SIDE_OUTPUTS = ['attn_ratio', 'attn_cos', 'mlp_ratio', 'mlp_cos'] as const;

export function floatTensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new Tensor('float32', data, dims);
}

export function int64Tensor(values: ArrayLike<number>, dims: readonly number[]): Tensor {
  return new Tensor('int64', BigInt64Array.from(Array.from(values), BigInt), dims);
}

/** A float output's data: every output comes back to the host (no session asks to keep one on a device). */
function floats(tensor: Tensor): Float32Array {
  return tensor.data as Float32Array;
}

/** Positions a full cache grows by: decode reallocates (copies) a layer's cache once every this many steps. */
const CACHE_GROWTH = 128;

/**
 * One layer's KV cache: keys and values [1, KvH, capacity, Dh] of which the first `length` positions are
 * filled. The layer graph reads the buffers where they lie (onnxruntime-node wraps an input's memory without
 * copying it) and returns only the new tokens' rows, which `append` writes in place; so a decode step copies
 * two rows per KV head, not the cache. The unused slots cost attention work on them (masked), at most
 * CACHE_GROWTH of them.
 */
export class LayerCache {
  #key: Float32Array = new Float32Array(0);
  #value: Float32Array = new Float32Array(0);
  #capacity = 0;
  #length = 0;

  constructor(readonly dims: Pick<RuntimeDims, 'numKvHeads' | 'headDim'>) {}

  /** Filled positions. */
  get length(): number {
    return this.#length;
  }

  /** The filled positions as [1, KvH, length, Dh] (a copy when the cache has room left). */
  get keys(): Float32Array {
    return this.#length === this.#capacity ? this.#key : this.#copy(this.#key, this.#length);
  }

  get values(): Float32Array {
    return this.#length === this.#capacity ? this.#value : this.#copy(this.#value, this.#length);
  }

  /**
   * Another holder of the same cache (the branches of a shared prefill layer). They share the buffers, which
   * is safe because a full cache (as every cache a prefill leaves) reallocates before it takes a new row.
   */
  share(): LayerCache {
    if (this.#length < this.#capacity) throw new Error('only a full cache can be shared');
    const shared = new LayerCache(this.dims);
    [shared.#key, shared.#value, shared.#capacity, shared.#length] = [this.#key, this.#value, this.#capacity, this.#length];
    return shared;
  }

  /** The graph inputs that read this cache. */
  feeds(): { past_key: Tensor; past_value: Tensor; past_length: Tensor } {
    const dims = [1, this.dims.numKvHeads, this.#capacity, this.dims.headDim];
    return {
      past_key: floatTensor(this.#key, dims),
      past_value: floatTensor(this.#value, dims),
      past_length: int64Tensor([this.#length], []),
    };
  }

  /** Appends `count` positions given as [1, KvH, count, Dh] keys and values. */
  append(keys: Float32Array, values: Float32Array, count: number): void {
    if (this.#length === 0) {
      // A prefill's rows become the cache as they are: no copy, and no room (decode's first step makes it).
      [this.#key, this.#value, this.#capacity, this.#length] = [keys, values, count, count];
      return;
    }
    if (this.#length + count > this.#capacity) {
      const capacity = this.#length + count + CACHE_GROWTH;
      [this.#key, this.#value, this.#capacity] = [this.#copy(this.#key, capacity), this.#copy(this.#value, capacity), capacity];
    }
    const { numKvHeads, headDim } = this.dims;
    for (let h = 0; h < numKvHeads; h++) {
      const at = (h * this.#capacity + this.#length) * headDim;
      this.#key.set(keys.subarray(h * count * headDim, (h + 1) * count * headDim), at);
      this.#value.set(values.subarray(h * count * headDim, (h + 1) * count * headDim), at);
    }
    this.#length += count;
  }

  /** The filled rows of `buffer` in a new buffer of `capacity` slots per head. */
  #copy(buffer: Float32Array, capacity: number): Float32Array {
    const { numKvHeads, headDim } = this.dims;
    const out = new Float32Array(numKvHeads * capacity * headDim);
    for (let h = 0; h < numKvHeads; h++) {
      const start = h * this.#capacity * headDim;
      out.set(buffer.subarray(start, start + this.#length * headDim), h * capacity * headDim);
    }
    return out;
  }
}

/** Token embeddings [S, D] for `ids`. */
export async function embedTokens(model: ModelSessions, ids: readonly number[]): Promise<Float32Array> {
  const { embeds } = await model.embed.run({ input_ids: int64Tensor(ids, [1, ids.length]) });
  return floats(embeds);
}

/** The vision tower's session; a text-only model has none, and says so in words. */
export function visionSession(model: Pick<ModelSessions, 'vision'>): RunnableSession {
  if (!model.vision) throw new Error('this model has no vision tower (a text-only model): ask without an image');
  return model.vision;
}

/** The projected visual tokens [N, D] of one preprocessed view [1, 3, H, W]; LLaVA-NeXT's image_newline [D] too when asked. */
export async function encodeImage(
  model: ModelSessions,
  pixels: Float32Array,
  size: number,
  withNewline = false,
): Promise<{ features: Float32Array; count: number; newline?: Float32Array }> {
  const fetches = ['image_features', ...(withNewline ? ['image_newline'] : [])];
  const out = await visionSession(model).run({ pixel_values: floatTensor(pixels, [1, 3, size, size]) }, fetches);
  const encoded = { features: floats(out.image_features), count: out.image_features.dims[1] };
  return withNewline ? { ...encoded, newline: floats(out.image_newline) } : encoded;
}

/**
 * Runs decoder layer `layer` on `seqLen` new tokens after the cached past and appends their keys and values to
 * `cache`. Side outputs are fetched only when asked for, so ordinary steps copy nothing extra to the host.
 * `keyProj`: these tokens' k_proj rows [seqLen, KvH * Dh] when a probe of this layer already computed them.
 */
export async function runLayer(
  model: ModelSessions,
  layer: number,
  hidden: Float32Array,
  positions: ArrayLike<number>,
  cache: LayerCache,
  withSide: boolean,
  keyProj?: Float32Array,
  ropeGrid?: RopeGrid,
): Promise<LayerOutput> {
  const seqLen = positions.length;
  const feeds = {
    hidden: floatTensor(hidden, [1, seqLen, model.dims.hidden]),
    position_ids: int64Tensor(positions, [1, seqLen]),
    known_key_proj: floatTensor(keyProj ?? NO_ROWS, [1, keyProj ? seqLen : 0, keyWidth(model.dims)]),
    ...ropeGridFeed(model, ropeGrid),
    ...cache.feeds(),
  };
  const fetches = ['hidden_out', 'new_key', 'new_value', ...(withSide ? SIDE_OUTPUTS : [])];
  const out = await model.layers[layer].run(feeds, fetches);
  cache.append(floats(out.new_key), floats(out.new_value), seqLen);
  if (!withSide) return { hidden: floats(out.hidden_out), cache };
  const [attnRatio, attnCos, mlpRatio, mlpCos] = SIDE_OUTPUTS.map((name) => floats(out[name]));
  return { hidden: floats(out.hidden_out), cache, side: { attnRatio, attnCos, mlpRatio, mlpCos } };
}

const NO_ROWS = new Float32Array(0);

/** An M-RoPE prompt's image block: its first sequence index and its merged rows and columns (zeros: no image). */
export type RopeGrid = readonly [start: number, rows: number, cols: number];

export const NO_IMAGE_GRID: RopeGrid = [0, 0, 0];

function ropeGridFeed(model: ModelSessions, grid: RopeGrid | undefined): { rope_grid?: Tensor } {
  return model.dims.mrope ? { rope_grid: int64Tensor(grid ?? NO_IMAGE_GRID, [3]) } : {};
}

/** Width of a k_proj row: every KV head's key. */
export function keyWidth(dims: Pick<RuntimeDims, 'numKvHeads' | 'headDim'>): number {
  return dims.numKvHeads * dims.headDim;
}

export interface ProbeOutput {
  /** Instruction-to-image attention [S]. */
  attention: Float32Array;
  /** Layer NN's k_proj of every token [S, KvH * Dh], before RoPE: what `runLayer` takes as `keyProj`. */
  keyProj: Float32Array;
}

/** probe_NN: layer NN's q/k on `hidden`, queries `queryStart..S-1`. */
export async function runProbe(
  model: ModelSessions,
  layer: number,
  hidden: Float32Array,
  positions: ArrayLike<number>,
  queryStart: number,
  ropeGrid?: RopeGrid,
): Promise<ProbeOutput> {
  const seqLen = positions.length;
  const session = await model.probe(layer);
  const out = await session.run({
    hidden: floatTensor(hidden, [1, seqLen, model.dims.hidden]),
    position_ids: int64Tensor(positions, [1, seqLen]),
    query_start: int64Tensor([queryStart], [1]),
    ...ropeGridFeed(model, ropeGrid),
  });
  return { attention: floats(out.attention), keyProj: floats(out.key_proj) };
}

/** Logits [V] of the last row of `hidden` ([S, D]). */
export async function lastTokenLogits(model: ModelSessions, hidden: Float32Array): Promise<Float32Array> {
  const d = model.dims.hidden;
  const last = hidden.subarray(hidden.length - d);
  const { logits } = await model.head.run({ hidden: floatTensor(last, [1, 1, d]) });
  return floats(logits);
}
