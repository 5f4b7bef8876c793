// layer_NN.onnx: one Llama decoder layer with its KV cache and TransPrune's per-token side outputs.
// Mirrors transformers' LlamaDecoderLayer: x -> x + attn(norm(x)) -> h + mlp(norm(h)).

import { Graph } from '../builder.js';
import {
  applyRope,
  cacheMask,
  cachedAttention,
  linear,
  mergeHeads,
  rmsNorm,
  ropeTables,
  rowNorm,
  silu,
  splitHeads,
  type AttentionShape,
} from '../blocks.js';
import type { WeightFile } from '../weight-file.js';
import type { DecoderSource, DecoderTextConfig } from './source.js';

export const layerGraphName = (layer: number) => `layer_${String(layer).padStart(2, '0')}`;

export async function buildDecoderLayer(src: DecoderSource, layer: number, file: WeightFile): Promise<Uint8Array> {
  const t = src.config.text;
  const shape: AttentionShape = { heads: t.numHeads, kvHeads: t.numKvHeads, headDim: t.headDim };
  const g = new Graph(layerGraphName(layer), file);
  const hidden = g.input('hidden', 'float', [1, 'S', t.hiddenSize]);
  const positionIds = g.input('position_ids', 'int64', [1, 'S']);
  // The cache as the runtime holds it: C slots per KV head, the first past_length filled (see cacheMask).
  const pastKey = g.input('past_key', 'float', [1, t.numKvHeads, 'C', t.headDim]);
  const pastValue = g.input('past_value', 'float', [1, t.numKvHeads, 'C', t.headDim]);
  const pastLength = g.input('past_length', 'int64', []);
  // k_proj of every token when a probe of this layer already computed it (G = S), else nothing (G = 0).
  const knownKeyProj = g.input('known_key_proj', 'float', [1, 'G', t.numKvHeads * t.headDim]);
  const ropeGrid = ropeGridInput(g, t);

  const { attnIn, q, k } = await attentionInput(g, src, layer, hidden, positionIds, { knownKeyProj, ropeGrid });
  const v = splitHeads(g, await projection(g, src, layer, attnIn, 'v_proj'), t.numKvHeads, t.headDim);
  const mask = cacheMask(g, g.dim(hidden, 1), g.dim(pastKey, 2), pastLength, t.slidingWindow);
  const attention = await cachedAttention(g, q, { key: pastKey, value: pastValue }, { key: k, value: v }, shape, mask);
  const context = mergeHeads(g, attention, t.numHeads, t.headDim);
  const attnOut = await linear(g, src.reader, context, name(src, layer, 'self_attn.o_proj.weight'));
  const afterAttn = g.add(hidden, attnOut);

  const mlpIn = await rmsNorm(g, src.reader, afterAttn, name(src, layer, 'post_attention_layernorm.weight'), t.rmsNormEps);
  const gate = await linear(g, src.reader, mlpIn, name(src, layer, 'mlp.gate_proj.weight'));
  const up = await linear(g, src.reader, mlpIn, name(src, layer, 'mlp.up_proj.weight'));
  const mlpOut = await linear(g, src.reader, g.mul(silu(g, gate), up), name(src, layer, 'mlp.down_proj.weight'));

  const S: (string | number)[] = [1, 'S'];
  const tokens = [1, 'S', t.hiddenSize];
  g.output('hidden_out', g.add(afterAttn, mlpOut), 'float', tokens);
  // Only the new tokens' keys and values: the runtime appends them to its cache.
  g.output('new_key', k, 'float', [1, t.numKvHeads, 'S', t.headDim]);
  g.output('new_value', v, 'float', [1, t.numKvHeads, 'S', t.headDim]);
  const attn = transition(g, attnIn, attnOut);
  const mlp = transition(g, mlpIn, mlpOut);
  g.output('attn_ratio', attn.ratio, 'float', S);
  g.output('attn_cos', attn.cos, 'float', S);
  g.output('mlp_ratio', mlp.ratio, 'float', S);
  g.output('mlp_cos', mlp.cos, 'float', S);
  return g.toBytes();
}

/**
 * input_layernorm, then q and k with RoPE at the given positions: the part the probe shares with the layer.
 * `keyProj` is k_proj's output before RoPE, the probe's gift to the layer it probes: the layer's tokens are a
 * subset of the probe's rows (pruning drops rows, and a norm and a projection act row by row), and RoPE comes
 * after, at whatever positions the layer's tokens take.
 */
export async function attentionInput(
  g: Graph,
  src: DecoderSource,
  layer: number,
  hidden: string,
  positionIds: string,
  options: { queryRows?: (x: string) => string; knownKeyProj?: string; ropeGrid?: string } = {},
) {
  const t = src.config.text;
  const { queryRows, knownKeyProj, ropeGrid } = options;
  const attnIn = await rmsNorm(g, src.reader, hidden, name(src, layer, 'input_layernorm.weight'), t.rmsNormEps);
  const mrope = t.mropeSection && ropeGrid ? { section: t.mropeSection, grid: ropeGrid } : undefined;
  const keyRope = ropeTables(g, positionIds, t.headDim, t.ropeTheta, mrope);
  // The probe asks for queries on a suffix of the tokens only; the layer uses them all.
  const queryRope = queryRows ? ropeTables(g, queryRows(positionIds), t.headDim, t.ropeTheta, mrope) : keyRope;
  const qIn = queryRows ? queryRows(attnIn) : attnIn;
  const q = splitHeads(g, await projection(g, src, layer, qIn, 'q_proj'), t.numHeads, t.headDim);
  const projectKeys = (b: Graph) => projection(b, src, layer, attnIn, 'k_proj');
  // A probe may have projected every token's keys already (G = S rows given): then k_proj does not run.
  const keyProj = knownKeyProj
    ? await g.ifElse(g.op('Greater', [g.dim(knownKeyProj, 1), g.constant('int64', [0], [])]), 'float', () => knownKeyProj, projectKeys)
    : await projectKeys(g);
  const k = splitHeads(g, keyProj, t.numKvHeads, t.headDim);
  return { attnIn, q: applyRope(g, q, queryRope), k: applyRope(g, k, keyRope), keyProj };
}

/**
 * M-RoPE models' extra input: int64 [3] = the image block's first sequence index and its merged rows and columns,
 * from which the graph derives every token's 3D position (mropePositions); zeros without an image.
 */
export function ropeGridInput(g: Graph, t: DecoderTextConfig): string | undefined {
  return t.mropeSection ? g.input('rope_grid', 'int64', [3]) : undefined;
}

/** q_proj, k_proj or v_proj of the layer, with its bias where the model has one (Qwen2). */
function projection(g: Graph, src: DecoderSource, layer: number, x: string, which: 'q_proj' | 'k_proj' | 'v_proj'): Promise<string> {
  const bias = src.config.text.qkvBias ? name(src, layer, `self_attn.${which}.bias`) : undefined;
  return linear(g, src.reader, x, name(src, layer, `self_attn.${which}.weight`), bias);
}

/** Method spec section 1: ||out|| / ||in|| and cos(in, out) per token, no epsilon (as the released code). */
function transition(g: Graph, moduleIn: string, moduleOut: string): { ratio: string; cos: string } {
  const inNorm = rowNorm(g, moduleIn);
  const outNorm = rowNorm(g, moduleOut);
  const dot = g.reduce('ReduceSum', g.mul(moduleIn, moduleOut), [-1], false);
  return { ratio: g.div(outNorm, inNorm), cos: g.div(dot, g.mul(inNorm, outNorm)) };
}

function name(src: DecoderSource, layer: number, suffix: string): string {
  return src.names.text(`layers.${layer}.${suffix}`);
}
