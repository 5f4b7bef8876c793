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
}

/** All the runtime asks of a session (benchmarks wrap it to time every run). */
export type RunnableSession = Pick<InferenceSession, 'run'>;

/** The sessions of one model pack; probes are created on first use. */
export interface ModelSessions {
  readonly dims: RuntimeDims;
  readonly embed: RunnableSession;
  readonly vision: RunnableSession;
  readonly layers: readonly RunnableSession[];
  readonly head: RunnableSession;
  probe(layer: number): Promise<RunnableSession>;
}

/** One layer's cache: [1, KvH, P, Dh] keys and values (on the device when the provider keeps them there). */
export interface LayerCache {
  key: Tensor;
  value: Tensor;
}

export interface LayerOutput {
  hidden: Float32Array;
  cache: LayerCache;
  side?: SideOutputs;
}

export const SIDE_OUTPUTS = ['attn_ratio', 'attn_cos', 'mlp_ratio', 'mlp_cos'] as const;
/** Outputs a GPU provider may keep in device memory: they only ever go back in as the next step's past. */
export const DEVICE_RESIDENT_OUTPUTS = ['present_key', 'present_value'] as const;

export function floatTensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new Tensor('float32', data, dims);
}

export function int64Tensor(values: ArrayLike<number>, dims: readonly number[]): Tensor {
  return new Tensor('int64', BigInt64Array.from(Array.from(values), BigInt), dims);
}

/** Host copy of an output, downloading it when the provider left it on the device. */
async function hostFloats(tensor: Tensor): Promise<Float32Array> {
  return (tensor.location === 'cpu' ? tensor.data : await tensor.getData()) as Float32Array;
}

export function emptyCache(dims: RuntimeDims): LayerCache {
  const shape = [1, dims.numKvHeads, 0, dims.headDim];
  return { key: floatTensor(new Float32Array(0), shape), value: floatTensor(new Float32Array(0), shape) };
}

export function disposeCache(cache: LayerCache): void {
  cache.key.dispose();
  cache.value.dispose();
}

/**
 * A second holder's handle on a cache, disposable independently of the first (branched prefills hand
 * one layer's cache to several branches, and each Decoder disposes its own): host data is shared by a
 * new tensor, since dispose() only drops a tensor's own reference; device data is copied to the host.
 */
export async function shareCache(cache: LayerCache): Promise<LayerCache> {
  const share = async (t: Tensor) => floatTensor(await hostFloats(t), t.dims);
  return { key: await share(cache.key), value: await share(cache.value) };
}

/** Token embeddings [S, D] for `ids`. */
export async function embedTokens(model: ModelSessions, ids: readonly number[]): Promise<Float32Array> {
  const { embeds } = await model.embed.run({ input_ids: int64Tensor(ids, [1, ids.length]) });
  return hostFloats(embeds);
}

/** The projected visual tokens [N, D] of one preprocessed view [1, 3, H, W]; LLaVA-NeXT's image_newline [D] too when asked. */
export async function encodeImage(
  model: ModelSessions,
  pixels: Float32Array,
  size: number,
  withNewline = false,
): Promise<{ features: Float32Array; count: number; newline?: Float32Array }> {
  const fetches = ['image_features', ...(withNewline ? ['image_newline'] : [])];
  const out = await model.vision.run({ pixel_values: floatTensor(pixels, [1, 3, size, size]) }, fetches);
  const encoded = { features: await hostFloats(out.image_features), count: out.image_features.dims[1] };
  return withNewline ? { ...encoded, newline: await hostFloats(out.image_newline) } : encoded;
}

/**
 * Runs decoder layer `layer` on `seqLen` new tokens after the cached past. Side outputs are fetched
 * only when asked for, so ordinary steps copy nothing extra to the host.
 */
export async function runLayer(
  model: ModelSessions,
  layer: number,
  hidden: Float32Array,
  positions: ArrayLike<number>,
  past: LayerCache,
  withSide: boolean,
): Promise<LayerOutput> {
  const seqLen = positions.length;
  const feeds = {
    hidden: floatTensor(hidden, [1, seqLen, model.dims.hidden]),
    position_ids: int64Tensor(positions, [1, seqLen]),
    past_key: past.key,
    past_value: past.value,
  };
  const fetches = ['hidden_out', ...DEVICE_RESIDENT_OUTPUTS, ...(withSide ? SIDE_OUTPUTS : [])];
  const out = await model.layers[layer].run(feeds, fetches);
  const cache = { key: out.present_key, value: out.present_value };
  if (!withSide) return { hidden: await hostFloats(out.hidden_out), cache };
  const [attnRatio, attnCos, mlpRatio, mlpCos] = await Promise.all(SIDE_OUTPUTS.map((name) => hostFloats(out[name])));
  return { hidden: await hostFloats(out.hidden_out), cache, side: { attnRatio, attnCos, mlpRatio, mlpCos } };
}

/** Instruction-to-image attention [S] from probe_NN (layer NN's q/k on `hidden`), queries `queryStart..S-1`. */
export async function runProbe(
  model: ModelSessions,
  layer: number,
  hidden: Float32Array,
  positions: ArrayLike<number>,
  queryStart: number,
): Promise<Float32Array> {
  const seqLen = positions.length;
  const session = await model.probe(layer);
  const { attention } = await session.run({
    hidden: floatTensor(hidden, [1, seqLen, model.dims.hidden]),
    position_ids: int64Tensor(positions, [1, seqLen]),
    query_start: int64Tensor([queryStart], [1]),
  });
  return hostFloats(attention);
}

/** Logits [V] of the last row of `hidden` ([S, D]). */
export async function lastTokenLogits(model: ModelSessions, hidden: Float32Array): Promise<Float32Array> {
  const d = model.dims.hidden;
  const last = hidden.subarray(hidden.length - d);
  const { logits } = await model.head.run({ hidden: floatTensor(last, [1, 1, d]) });
  return hostFloats(logits);
}
