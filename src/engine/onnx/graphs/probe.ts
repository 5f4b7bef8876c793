// probe_NN.onnx: the instruction-to-image attention of method spec section 3, using layer NN's
// input_layernorm, q_proj, k_proj and RoPE, and the k_proj rows layer NN then reuses. Its initializers
// point into layer_NN's weight file.

import { Graph } from '../builder.js';
import { attentionProbs, causalMask } from '../blocks.js';
import type { WeightFile } from '../weight-file.js';
import { attentionInput, ropeGridInput } from './decoder-layer.js';
import type { DecoderSource } from './source.js';

export const probeGraphName = (layer: number) => `probe_${String(layer).padStart(2, '0')}`;

/** `file` must be the one layer NN was written to: the shared tensors are then referenced, not rewritten. */
export async function buildProbe(src: DecoderSource, layer: number, file: WeightFile): Promise<Uint8Array> {
  const t = src.config.text;
  const g = new Graph(probeGraphName(layer), file);
  const hidden = g.input('hidden', 'float', [1, 'S', t.hiddenSize]);
  const positionIds = g.input('position_ids', 'int64', [1, 'S']);
  const queryStart = g.input('query_start', 'int64', [1]);
  const ropeGrid = ropeGridInput(g, t);

  // Only the queries query_start..S-1 are needed, so only those rows go through q_proj.
  const queryRows = (x: string) => g.op('Slice', [x, queryStart, g.ints(Number.MAX_SAFE_INTEGER), g.ints(1)]);
  const { q, k, keyProj } = await attentionInput(g, src, layer, hidden, positionIds, { queryRows, ropeGrid });
  const offset = g.op('Squeeze', [queryStart, g.ints(0)]); // query row r is token query_start + r
  const mask = causalMask(g, g.dim(q, 2), g.dim(k, 2), offset, t.slidingWindow);
  const probs = attentionProbs(g, q, k, { heads: t.numHeads, kvHeads: t.numKvHeads, headDim: t.headDim }, mask);
  // probs is [1, KvH, groups, queries, S]: every head and query weighs the same, so one mean over
  // axes 1..3 is the mean over heads followed by the mean over queries.
  g.output('attention', g.reduce('ReduceMean', probs, [0, 1, 2, 3], false), 'float', ['S']);
  // Layer NN needs the same projection of its tokens: the runtime passes it the rows it keeps.
  g.output('key_proj', keyProj, 'float', [1, 'S', t.numKvHeads * t.headDim]);
  return g.toBytes();
}
