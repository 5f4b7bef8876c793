// The building blocks the graphs share (norms, linears, RoPE, attention), each the ONNX
// transcription of the matching transformers module.

import { float, type Attr, type Graph } from './builder.js';
import { quantizeBlockwise, type QuantizedMatrix } from './quantize.js';

/** Reads a checkpoint tensor by its full name, as float32 with its stored dims. */
export interface WeightReader {
  read(name: string): Promise<{ data: Float32Array; dims: number[] }>;
  /** The stored dims alone, without reading the data. */
  dims(name: string): number[];
  /** A weight already block-quantized at `bits` in a form MatMulNBits holds exactly (a GGUF's Q4_0 / Q8_0), or null. */
  exact?(name: string, bits: 4 | 8): ExactBlocks | null;
}

/** Weights whose source blocks MatMulNBits holds as they are: no re-quantization, no added error. */
export interface ExactBlocks {
  blockSize: number;
  read(): Promise<QuantizedMatrix>;
}

/**
 * Inputs per MatMulNBits block. 64 with an fp32 scale and a zero point per block is llama.cpp's bits per
 * weight (int4 4.56 vs Q4_0's 4.5, int8 8.63 vs Q8_0's 8.5; blocks of 32 read 8-12% more), and a chain of
 * 4096 x 11008 int4 products at one token ran about 11% faster than with 32. On a 4096-input product with
 * outlier channels the int4 error was 6.0% (Q4_0's 5.6%, 4.6% with 32); 128 ran faster still but erred 6.3%.
 */
/** Inputs per quantization block of MatMulNBits (int4/int8 linears). */
export const QUANT_BLOCK = 64;
/** MatMulNBits' accuracy_level for int8 inputs (0 = float32 inputs). */
const INT8_ACCURACY_LEVEL = 4;

const LOWEST_FLOAT = -3.4028234663852886e38; // masked scores: finite, so a fully-masked row can never make NaN

/** A checkpoint tensor as a float32 graph value, optionally stored under different dims (same element order). */
export function tensor(g: Graph, r: WeightReader, name: string, dims?: number[]): Promise<string> {
  return g.weight(name, async () => {
    const t = await r.read(name);
    return { data: t.data, dims: dims ?? t.dims };
  });
}

/**
 * x @ W^T + b for a PyTorch Linear. Float packs store W pre-transposed to [in, out] so the graph is a
 * plain MatMul; int4/int8 packs use MatMulNBits (com.microsoft), which takes W block-quantized as [out, in].
 */
export async function linear(g: Graph, r: WeightReader, x: string, weightName: string, biasName?: string): Promise<string> {
  const y = g.quantBits
    ? await quantizedMatMul(g, r, x, weightName, g.quantBits)
    : g.matmul(
        x,
        await g.weight(`${weightName}^T`, async () => {
          const { data, dims } = await r.read(weightName);
          return { data: transpose2d(data, dims[0], dims[1]), dims: [dims[1], dims[0]] };
        }),
      );
  return biasName ? g.add(y, await tensor(g, r, biasName)) : y;
}

export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  const tile = 64; // tiles keep both the reads and the writes in cache on 100M-element matrices
  for (let i0 = 0; i0 < rows; i0 += tile) {
    for (let j0 = 0; j0 < cols; j0 += tile) {
      const iEnd = Math.min(rows, i0 + tile);
      const jEnd = Math.min(cols, j0 + tile);
      for (let i = i0; i < iEnd; i++) {
        for (let j = j0; j < jEnd; j++) out[j * rows + i] = data[i * cols + j];
      }
    }
  }
  return out;
}

/**
 * LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight, over the last axis. Written with Pow, the form ORT fuses into one
 * SimplifiedLayerNormalization kernel (from Mul(x, x) it runs six nodes: a decode step's cost is mostly per node).
 */
export async function rmsNorm(g: Graph, r: WeightReader, x: string, weightName: string, eps: number): Promise<string> {
  const meanSquare = g.reduce('ReduceMean', g.op('Pow', [x, g.scalar(2)]), [-1], true);
  const normed = g.div(x, g.op('Sqrt', [g.add(meanSquare, g.scalar(eps))]));
  return g.mul(normed, await tensor(g, r, weightName));
}

export async function layerNorm(g: Graph, r: WeightReader, x: string, prefix: string, eps: number): Promise<string> {
  const [scale, bias] = [await tensor(g, r, `${prefix}.weight`), await tensor(g, r, `${prefix}.bias`)];
  return g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: float(eps) });
}

/** [1, S, heads*headDim] -> [1, heads, S, headDim] */
export function splitHeads(g: Graph, x: string, heads: number, headDim: number): string {
  return g.transpose(g.reshape(x, [0, 0, heads, headDim]), [0, 2, 1, 3]);
}

/** [1, heads, S, headDim] -> [1, S, heads*headDim] */
export function mergeHeads(g: Graph, x: string, heads: number, headDim: number): string {
  return g.reshape(g.transpose(x, [0, 2, 1, 3]), [0, 0, heads * headDim]);
}

export interface Rope {
  cos: string;
  sin: string;
}

/** M-RoPE (Qwen2-VL): how many rotary frequencies follow each axis, and the graph's `rope_grid` input (see mropePositions). */
export interface Mrope {
  section: readonly [number, number, number];
  grid: string;
}

/**
 * Llama rotary tables at explicit positions: cos/sin [S, headDim / 2] with angle = position * theta^(-2i/headDim),
 * row s for the s-th token (not for position s), as RotaryEmbedding reads them with position ids 0..S-1.
 * With `mrope` the positions are sequence indices mapped to (temporal, height, width) positions, and frequency i
 * turns with one of them: the first section[0] with the temporal, the next section[1] with the height, the rest with
 * the width (transformers' Qwen2_5_VLRotaryEmbedding.recomposition_frequencies).
 */
export function ropeTables(g: Graph, positionIds: string, headDim: number, theta: number, mrope?: Mrope): Rope {
  const half = headDim / 2;
  const invFreq = Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  let angles: string;
  if (!mrope) {
    const positions = g.reshape(g.cast(positionIds, 'float'), [-1, 1]); // [S, 1]
    angles = g.mul(positions, g.constant('float', invFreq)); // [S, half]
  } else {
    const [t, h] = mrope.section;
    const axisOf = (i: number) => (i < t ? 0 : i < t + h ? 1 : 2);
    // One frequency row per axis, zero where another axis turns that frequency: summing the three products over
    // the axes adds only zeros to each angle, so it is the very product transformers computes.
    const perAxis = [0, 1, 2].flatMap((axis) => invFreq.map((f, i) => (axisOf(i) === axis ? f : 0)));
    const positions = g.unsqueeze(g.cast(mropePositions(g, positionIds, mrope.grid), 'float'), [2]); // [3, S, 1]
    angles = g.reduce('ReduceSum', g.mul(positions, g.constant('float', perAxis, [3, 1, half])), [0], false);
  }
  return { cos: g.op('Cos', [angles]), sin: g.op('Sin', [angles]) };
}

/**
 * Sequence indices [1, S] -> M-RoPE positions [3, S] (transformers' get_rope_index for one image), given
 * `grid` = int64 [3]: the image block's first index, and its merged rows and columns. Text before the block keeps
 * its index on all three axes; image token r * cols + c is at (start, start + r, start + c); text after it continues
 * from start + max(rows, cols). Pruned sequences pass each token's original index, so a kept token keeps its own
 * position; a grid of zeros (no image) leaves every index as it is.
 */
export function mropePositions(g: Graph, positionIds: string, grid: string): string {
  const at = (i: number) => g.op('Gather', [grid, g.constant('int64', [i], [])], { axis: 0 });
  const [start, rows, cols] = [at(0), at(1), at(2)];
  const count = g.mul(rows, cols);
  const rel = g.sub(positionIds, start);
  const zero = g.constant('int64', [0], []);
  const inImage = g.op('And', [g.op('GreaterOrEqual', [rel, zero]), g.op('Less', [rel, count])]);
  const afterImage = g.add(g.sub(positionIds, count), g.op('Max', [rows, cols]));
  const text = g.op('Where', [g.op('GreaterOrEqual', [rel, count]), afterImage, positionIds]);
  const safeCols = g.op('Max', [cols, g.constant('int64', [1], [])]); // no division by zero without an image
  const axis = (inside: string) => g.op('Where', [inImage, inside, text]);
  const temporal = axis(g.op('Expand', [start, g.op('Shape', [positionIds])]));
  const height = axis(g.add(start, g.div(rel, safeCols)));
  const width = axis(g.add(start, g.op('Mod', [rel, safeCols])));
  return g.concat([temporal, height, width], 0);
}

/**
 * x [1, heads, S, headDim] * cos + rotate_half(x) * sin, with rotate_half(x) = [-x2, x1] (the transformers
 * convention): RotaryEmbedding (com.microsoft), one pass instead of six elementwise ones. Position ids given
 * as the one value 0 make it read table row s for token s.
 */
export function applyRope(g: Graph, x: string, rope: Rope): string {
  return g.contribOp('RotaryEmbedding', [x, g.ints(0), rope.cos, rope.sin], { interleaved: 0 });
}

/**
 * bool [Sq, T]: query row i may see key j iff j <= offset + i (offset = keys before the first query),
 * and, with a sliding window W, also j > offset + i - W (the W keys up to itself, as transformers' Mistral).
 */
export function causalMask(g: Graph, queryCount: string, keyCount: string, offset: string, window?: number): string {
  return visibleKeys(g, queryCount, range(g, keyCount), offset, window);
}

/**
 * causalMask over a decoder layer's keys: the cache's C slots, of which the first `pastLength` are filled,
 * then the Sq new tokens at cache index pastLength + i.
 */
export function cacheMask(g: Graph, queryCount: string, capacity: string, pastLength: string, window?: number): string {
  const slots = range(g, capacity);
  // An empty slot gets an index no query reaches, so it is masked like a future token.
  const filled = g.op('Where', [g.op('Less', [slots, pastLength]), slots, g.constant('int64', [UNREACHABLE_INDEX], [])]);
  const fresh = g.add(range(g, queryCount), pastLength);
  return visibleKeys(g, queryCount, g.concat([filled, fresh], 0), pastLength, window);
}

const UNREACHABLE_INDEX = 2 ** 62;

/** causalMask with each key's cache index given ([T] int64). */
function visibleKeys(g: Graph, queryCount: string, keyIndex: string, offset: string, window?: number): string {
  const query = g.add(g.unsqueeze(range(g, queryCount), [1]), offset); // [Sq, 1]
  const causal = g.op('LessOrEqual', [keyIndex, query]);
  if (window === undefined) return causal;
  return g.op('And', [causal, g.op('Greater', [keyIndex, g.op('Sub', [query, g.constant('int64', [window], [])])])]);
}

/** 0..n-1 as int64 [n], for an int64 scalar n. */
function range(g: Graph, n: string): string {
  return g.op('Range', [g.constant('int64', [0], []), n, g.constant('int64', [1], [])]);
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * softmax(q k^T / sqrt(headDim) [masked]) in float32, as [1, kvHeads, groups, Sq, T].
 * Grouped-query attention without copying KV: queries are grouped per KV head ([1, KvH, groups, Sq, Dh])
 * and MatMul broadcasts each KV head over its group, which is transformers' repeat_kv (head h uses KV head h / groups).
 */
export function attentionProbs(g: Graph, q: string, k: string, s: AttentionShape, mask?: string): string {
  return maskedSoftmax(g, keyScores(g, groupedQueries(g, q, s), k), mask);
}

/**
 * Attention of the new tokens over a decoder layer's cache and themselves: context [1, heads, Sq, Dh]. The cache
 * is read where it lies, never concatenated with the new keys and values (that would copy the whole cache on
 * every decode step): the scores of both parts are joined instead (Sq x (C + Sq), small when decoding) and the
 * context adds up both parts' products. A prefill has no cache (C = 0), and joining its Sq x Sq scores to nothing
 * would copy them all: it attends over its own keys alone. `mask` is cacheMask's.
 */
export function cachedAttention(
  g: Graph,
  q: string,
  cache: KeysValues,
  fresh: KeysValues,
  s: AttentionShape,
  mask: string,
): Promise<string> {
  const queries = groupedQueries(g, q, s);
  const own = (b: Graph) => attentionContext(b, maskedSoftmax(b, keyScores(b, queries, fresh.key), mask), fresh.value, s);
  const withCache = (b: Graph) => {
    const scores = b.concat([keyScores(b, queries, cache.key), keyScores(b, queries, fresh.key)], -1);
    const parts = b.concat([b.op('Shape', [cache.key], { start: 2, end: 3 }), b.op('Shape', [fresh.key], { start: 2, end: 3 })], 0);
    const [cached, ownProbs] = b.opN('Split', [maskedSoftmax(b, scores, mask), parts], 2, { axis: -1 });
    return b.add(attentionContext(b, cached, cache.value, s), attentionContext(b, ownProbs, fresh.value, s));
  };
  const noCache = g.op('Equal', [g.dim(cache.key, 2), g.constant('int64', [0], [])]);
  return g.ifElse(noCache, 'float', own, withCache);
}

/** Keys and values [1, KvH, T, Dh]. */
export interface KeysValues {
  key: string;
  value: string;
}

/** q [1, heads, Sq, Dh] grouped per KV head and scaled: [1, KvH, groups, Sq, Dh] / sqrt(Dh). */
function groupedQueries(g: Graph, q: string, s: AttentionShape): string {
  const grouped = g.reshape(q, [1, s.kvHeads, s.heads / s.kvHeads, -1, s.headDim]);
  return g.mul(grouped, g.scalar(1 / Math.sqrt(s.headDim)));
}

/** groupedQueries [1, KvH, groups, Sq, Dh] against keys [1, KvH, T, Dh]: scores [1, KvH, groups, Sq, T]. */
function keyScores(g: Graph, queries: string, k: string): string {
  // Transposing the last two axes right before the MatMul lets ORT fold it into the product (FusedMatMul transB)
  // instead of copying the keys.
  const kT = g.transpose(g.unsqueeze(k, [2]), [0, 1, 2, 4, 3]); // [1, KvH, 1, Dh, T]
  return g.matmul(queries, kT);
}

/** Softmax over the last axis with the keys `mask` hides (false) at the lowest float: a fully-hidden row stays finite. */
export function maskedSoftmax(g: Graph, scores: string, mask?: string): string {
  const masked = mask ? g.op('Where', [mask, scores, g.scalar(LOWEST_FLOAT)]) : scores;
  return g.op('Softmax', [masked], { axis: -1 });
}

/** probs [1, KvH, groups, Sq, T] @ v [1, KvH, T, Dh] -> [1, heads, Sq, Dh] */
export function attentionContext(g: Graph, probs: string, v: string, s: AttentionShape): string {
  const context = g.matmul(probs, g.unsqueeze(v, [2]));
  return g.reshape(context, [1, s.heads, -1, s.headDim]);
}

/** Per-token L2 norm over the last axis: [1, S, D] -> [1, S]. */
export function rowNorm(g: Graph, x: string): string {
  return g.op('Sqrt', [g.reduce('ReduceSumSquare', x, [-1], false)]);
}

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(g: Graph, x: string): string {
  const erf = g.op('Erf', [g.mul(x, g.scalar(Math.SQRT1_2))]);
  return g.mul(g.mul(x, g.scalar(0.5)), g.add(erf, g.scalar(1)));
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGelu(g: Graph, x: string): string {
  return g.mul(x, g.op('Sigmoid', [g.mul(x, g.scalar(1.702))]));
}

export function silu(g: Graph, x: string): string {
  return g.mul(x, g.op('Sigmoid', [x]));
}

async function quantizedMatMul(g: Graph, r: WeightReader, x: string, weightName: string, bits: 4 | 8): Promise<string> {
  const [n, k] = r.dims(weightName);
  // One quantization feeds three initializers; each is written once per weight file (the probe reuses the layer's).
  const exact = r.exact?.(weightName, bits) ?? null;
  const blockSize = exact?.blockSize ?? QUANT_BLOCK;
  let quantized: Promise<QuantizedMatrix> | undefined;
  const quantize = () =>
    (quantized ??= exact ? exact.read() : r.read(weightName).then(({ data }) => quantizeBlockwise(data, n, k, bits, QUANT_BLOCK)));
  const blocks = Math.ceil(k / blockSize);
  const key = `${weightName}#q${bits}`;
  const codes = await g.encodedWeight(`${key}.codes`, async () => ({
    bytes: (await quantize()).codes,
    type: 'uint8',
    dims: [n, blocks, (blockSize * bits) / 8],
  }));
  const scales = await g.encodedWeight(`${key}.scales`, async () => {
    const s = (await quantize()).scales;
    return { bytes: new Uint8Array(s.buffer, s.byteOffset, s.byteLength), type: 'float', dims: [n * blocks] };
  });
  const zeros = await g.encodedWeight(`${key}.zeros`, async () => {
    const z = (await quantize()).zeroPoints;
    return { bytes: z, type: 'uint8', dims: [z.length] };
  });
  const attrs: Record<string, Attr> = { K: k, N: n, bits, block_size: blockSize };
  if (g.int8Activations) attrs.accuracy_level = INT8_ACCURACY_LEVEL;
  return g.contribOp('MatMulNBits', [x, codes, scales, zeros], attrs);
}
