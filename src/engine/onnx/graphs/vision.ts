// vision.onnx: CLIP ViT up to the selected hidden state, then LLaVA's projector.
// Mirrors transformers' CLIPVisionTransformer (pre_layrnorm, encoder layers; post_layernorm is unused
// by LLaVA) and LlavaMultiModalProjector (linear_1, GELU, linear_2).

import { Graph } from '../builder.js';
import { attentionContext, attentionProbs, gelu, layerNorm, linear, mergeHeads, quickGelu, splitHeads, tensor } from '../blocks.js';
import { visionOf } from '../../model/config.js';
import type { WeightFile } from '../weight-file.js';
import type { GraphSource } from './source.js';

export async function buildVision(src: GraphSource, file: WeightFile): Promise<Uint8Array> {
  const { text: t } = src.config;
  const v = visionOf(src.config);
  const grid = v.imageSize / v.patchSize;
  const g = new Graph('vision', file);
  const pixels = g.input('pixel_values', 'float', [1, v.numChannels, v.imageSize, v.imageSize]);

  const patchWeight = await tensor(g, src.reader, src.names.vision('embeddings.patch_embedding.weight'));
  const patches = g.op('Conv', [pixels, patchWeight], { kernel_shape: [v.patchSize, v.patchSize], strides: [v.patchSize, v.patchSize] });
  const patchTokens = g.transpose(g.reshape(patches, [1, v.hiddenSize, grid * grid]), [0, 2, 1]); // [1, N, Dv]
  const cls = await tensor(g, src.reader, src.names.vision('embeddings.class_embedding'), [1, 1, v.hiddenSize]);
  const positions = await tensor(g, src.reader, src.names.vision('embeddings.position_embedding.weight'));
  const embeddings = g.add(g.concat([cls, patchTokens], 1), positions);

  // hidden_states[0] is the pre_layrnorm output and hidden_states[i] the output of layer i, so the
  // selected state needs exactly `visionFeatureLayer` layers.
  let hidden = await layerNorm(g, src.reader, embeddings, src.names.vision('pre_layrnorm'), v.layerNormEps);
  for (let i = 0; i < src.config.visionFeatureLayer; i++) hidden = await clipLayer(g, src, i, hidden);

  const selected =
    src.config.visionFeatureSelectStrategy === 'default'
      ? g.op('Slice', [hidden, g.ints(1), g.ints(Number.MAX_SAFE_INTEGER), g.ints(1)]) // drop CLS
      : hidden;
  const bias = (name: string) => (src.config.projectorBias ? src.names.projector(name) : undefined);
  const projected = await linear(g, src.reader, selected, src.names.projector('linear_1.weight'), bias('linear_1.bias'));
  const features = await linear(g, src.reader, gelu(g, projected), src.names.projector('linear_2.weight'), bias('linear_2.bias'));

  const n = grid * grid + (src.config.visionFeatureSelectStrategy === 'full' ? 1 : 0);
  g.output('image_features', features, 'float', [1, n, t.hiddenSize]);
  g.output('vision_features', selected, 'float', [1, n, v.hiddenSize]);
  // LLaVA-NeXT: the learned row separator, in the projector's output space, for packing the tiles.
  if (src.config.anyres) g.output('image_newline', await tensor(g, src.reader, src.names.imageNewline()), 'float', [t.hiddenSize]);
  return g.toBytes();
}

/** CLIPEncoderLayer: x + attn(ln1(x)), then + mlp(ln2(.)) with quick_gelu; attention has biases and no mask. */
async function clipLayer(g: Graph, src: GraphSource, layer: number, x: string): Promise<string> {
  const v = visionOf(src.config);
  const headDim = v.hiddenSize / v.numHeads;
  const shape = { heads: v.numHeads, kvHeads: v.numHeads, headDim };
  const p = (suffix: string) => src.names.vision(`encoder.layers.${layer}.${suffix}`);
  const proj = (input: string, which: string) => linear(g, src.reader, input, p(`self_attn.${which}.weight`), p(`self_attn.${which}.bias`));

  const normed = await layerNorm(g, src.reader, x, p('layer_norm1'), v.layerNormEps);
  const [q, k, val] = [await proj(normed, 'q_proj'), await proj(normed, 'k_proj'), await proj(normed, 'v_proj')];
  const probs = attentionProbs(g, splitHeads(g, q, v.numHeads, headDim), splitHeads(g, k, v.numHeads, headDim), shape);
  const context = mergeHeads(g, attentionContext(g, probs, splitHeads(g, val, v.numHeads, headDim), shape), v.numHeads, headDim);
  const afterAttn = g.add(x, await proj(context, 'out_proj'));

  const mlpIn = await layerNorm(g, src.reader, afterAttn, p('layer_norm2'), v.layerNormEps);
  const fc1 = await linear(g, src.reader, mlpIn, p('mlp.fc1.weight'), p('mlp.fc1.bias'));
  const fc2 = await linear(g, src.reader, quickGelu(g, fc1), p('mlp.fc2.weight'), p('mlp.fc2.bias'));
  return g.add(afterAttn, fc2);
}
