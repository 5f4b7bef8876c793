// vision.onnx of a Qwen2.5-VL pack: the Qwen2.5 ViT and its patch merger, as transformers'
// Qwen2_5_VisionTransformerPretrainedModel computes them.
// Window attention: transformers reorders the patches so that each window's are contiguous, attends within each run,
// and restores the order after the merger. Every step but attention acts token by token (the merger on the 4 patches
// of a cell, which stay together), so here the hidden states stay in the processor's order and only attention
// gathers each window's queries, keys and values into a padded block of its own (windowLayout in image/qwen.ts),
// attends within the blocks (padding masked) and scatters the results back: the same tokens, with the scores of
// windows (P x window) instead of P x P.

import { Graph } from '../builder.js';
import {
  applyRope,
  attentionContext,
  attentionProbs,
  gelu,
  linear,
  maskedSoftmax,
  mergeHeads,
  rmsNorm,
  silu,
  splitHeads,
  type Rope,
  type WeightReader,
} from '../blocks.js';
import type { WeightFile } from '../weight-file.js';
import { QWEN_VISION_NORM_EPS, QWEN_VISION_ROPE_THETA, type QwenVLConfig } from '../../model/qwen-config.js';
import type { QwenWeightNames } from '../../model/qwen-weights.js';

export interface QwenGraphSource {
  config: QwenVLConfig;
  names: QwenWeightNames;
  reader: WeightReader;
}

export async function buildQwenVision(src: QwenGraphSource, file: WeightFile): Promise<Uint8Array> {
  const v = src.config.vision;
  const patchDim = v.inChannels * v.temporalPatchSize * v.patchSize ** 2;
  const headDim = v.hiddenSize / v.numHeads;
  const g = new Graph('vision', file);
  const patches = g.input('patches', 'float', ['P', patchDim]);
  const positions = g.input('patch_positions', 'int64', ['P', 2]);
  // Each window's patches side by side, padded with P (a zero row) to the full window; and each patch's slot there.
  const windowSlots = g.input('window_slots', 'int64', ['WS']);
  const patchSlots = g.input('patch_slots', 'int64', ['P']);

  // Conv3d with stride = kernel over one patch each is a linear map of the flattened patch (channel, frame, y, x).
  const patchWeight = src.names.vision('patch_embed.proj.weight');
  const asLinear: WeightReader = {
    read: async (name) => ({ ...(await src.reader.read(name)), ...(name === patchWeight ? { dims: [v.hiddenSize, patchDim] } : {}) }),
    dims: (name) => (name === patchWeight ? [v.hiddenSize, patchDim] : src.reader.dims(name)),
  };
  let hidden = await linear(g, asLinear, g.unsqueeze(patches, [0]), patchWeight); // [1, P, Dv]

  const rope = visionRope(g, positions, headDim);
  const windowPatches = (v.windowSize / v.patchSize) ** 2;
  const windows: Windows = {
    slots: windowSlots,
    patchSlots,
    size: windowPatches,
    // Padding slots hold no key: [windows, 1, window] broadcast over heads and queries.
    validKeys: g.reshape(g.op('Less', [windowSlots, g.dim(patches, 0)]), [-1, 1, windowPatches]),
  };
  for (let i = 0; i < v.depth; i++) {
    hidden = await visionBlock(g, src, i, hidden, rope, v.fullAttBlockIndexes.includes(i) ? undefined : windows);
  }

  // The merger: RMSNorm per patch, the 4 patches of each cell side by side, then Linear, GELU, Linear.
  const unit = v.spatialMergeSize ** 2;
  const normed = await rmsNorm(g, src.reader, hidden, src.names.vision('merger.ln_q.weight'), QWEN_VISION_NORM_EPS);
  const cells = g.reshape(normed, [1, -1, unit * v.hiddenSize]);
  const mlp = (x: string, index: number) =>
    linear(g, src.reader, x, src.names.vision(`merger.mlp.${index}.weight`), src.names.vision(`merger.mlp.${index}.bias`));
  const features = await mlp(gelu(g, await mlp(cells, 0)), 2);
  g.output('image_features', features, 'float', [1, 'N', v.outHiddenSize]);
  return g.toBytes();
}

/**
 * The ViT's 2D rotary tables [P, headDim / 2]: the first half of the frequencies turn with the patch's row, the
 * second with its column, each theta^(-2i / (headDim / 2)) for i < headDim / 4 (Qwen2_5_VLVisionRotaryEmbedding).
 */
function visionRope(g: Graph, positions: string, headDim: number): Rope {
  const quarter = headDim / 4;
  const invFreq = Array.from({ length: quarter }, (_, i) => 1 / QWEN_VISION_ROPE_THETA ** ((2 * i) / (headDim / 2)));
  const angles = g.mul(g.unsqueeze(g.cast(positions, 'float'), [2]), g.constant('float', invFreq)); // [P, 2, quarter]
  const table = g.reshape(angles, [-1, 2 * quarter]);
  return { cos: g.op('Cos', [table]), sin: g.op('Sin', [table]) };
}

interface Windows {
  slots: string;
  patchSlots: string;
  size: number;
  validKeys: string;
}

/**
 * Attention of q, k, v [1, heads, P, Dh] within windows: each gathered into [1, heads, windows, size, Dh] (a zero row
 * for the padding), softmax(q k^T / sqrt(Dh)) per window over its real patches, and the context scattered back to
 * [1, heads, P, Dh] by each patch's slot.
 */
function windowAttention(g: Graph, q: string, k: string, v: string, w: Windows, heads: number, headDim: number): string {
  const zeroRow = g.constant('float', new Array(heads * headDim).fill(0), [1, heads, 1, headDim]);
  const gather = (t: string) =>
    g.reshape(g.op('Gather', [g.concat([t, zeroRow], 2), w.slots], { axis: 2 }), [1, heads, -1, w.size, headDim]);
  const [qw, kw, vw] = [gather(q), gather(k), gather(v)];
  const scores = g.matmul(g.mul(qw, g.scalar(1 / Math.sqrt(headDim))), g.transpose(kw, [0, 1, 2, 4, 3]));
  const context = g.matmul(maskedSoftmax(g, scores, w.validKeys), vw); // [1, heads, windows, size, Dh]
  return g.op('Gather', [g.reshape(context, [1, heads, -1, headDim]), w.patchSlots], { axis: 2 });
}

/** Qwen2_5_VLVisionBlock: x + attn(norm1(x)), then + mlp(norm2(.)); attention within the windows unless none are given. */
async function visionBlock(g: Graph, src: QwenGraphSource, layer: number, x: string, rope: Rope, windows?: Windows) {
  const v = src.config.vision;
  const headDim = v.hiddenSize / v.numHeads;
  const shape = { heads: v.numHeads, kvHeads: v.numHeads, headDim };
  const p = (suffix: string) => src.names.vision(`blocks.${layer}.${suffix}`);
  const proj = (input: string, which: string) => linear(g, src.reader, input, p(`${which}.weight`), p(`${which}.bias`));

  const normed = await rmsNorm(g, src.reader, x, p('norm1.weight'), QWEN_VISION_NORM_EPS);
  const [q, k, val] = g.opN('Split', [await proj(normed, 'attn.qkv'), g.ints(v.hiddenSize, v.hiddenSize, v.hiddenSize)], 3, { axis: -1 });
  const rotate = (t: string) => applyRope(g, splitHeads(g, t, v.numHeads, headDim), rope);
  const [qh, kh, vh] = [rotate(q), rotate(k), splitHeads(g, val, v.numHeads, headDim)];
  const attended = windows
    ? windowAttention(g, qh, kh, vh, windows, v.numHeads, headDim)
    : attentionContext(g, attentionProbs(g, qh, kh, shape), vh, shape);
  const context = mergeHeads(g, attended, v.numHeads, headDim);
  const afterAttn = g.add(x, await proj(context, 'attn.proj'));

  const mlpIn = await rmsNorm(g, src.reader, afterAttn, p('norm2.weight'), QWEN_VISION_NORM_EPS);
  const gate = await proj(mlpIn, 'mlp.gate_proj');
  const up = await proj(mlpIn, 'mlp.up_proj');
  return g.add(afterAttn, await proj(g.mul(silu(g, gate), up), 'mlp.down_proj'));
}
