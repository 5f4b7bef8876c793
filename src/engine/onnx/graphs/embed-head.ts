// embed.onnx (token embeddings) and head.onnx (final RMSNorm + lm_head).

import { Graph } from '../builder.js';
import { linear, rmsNorm } from '../blocks.js';
import type { WeightFile } from '../weight-file.js';
import type { DecoderSource } from './source.js';

export async function buildEmbed(src: DecoderSource, file: WeightFile): Promise<Uint8Array> {
  const t = src.config.text;
  const g = new Graph('embed', file);
  const ids = g.input('input_ids', 'int64', [1, 'S']);
  const name = src.names.text('embed_tokens.weight');
  // Gather the rows first, then cast: an fp16 table stays fp16 in memory.
  const table = await g.rawWeight(name, () => src.reader.read(name));
  g.output('embeds', g.toFloat(g.op('Gather', [table, ids], { axis: 0 })), 'float', [1, 'S', t.hiddenSize]);
  return g.toBytes();
}

export async function buildHead(src: DecoderSource, file: WeightFile): Promise<Uint8Array> {
  const t = src.config.text;
  const g = new Graph('head', file);
  const hidden = g.input('hidden', 'float', [1, 'S', t.hiddenSize]);
  const normed = await rmsNorm(g, src.reader, hidden, src.names.text('norm.weight'), t.rmsNormEps);
  g.output('logits', await linear(g, src.reader, normed, src.names.lmHead()), 'float', [1, 'S', t.vocabSize]);
  return g.toBytes();
}
