// The decoder's shape as a pack's manifest stores it, shared by the LLaVA and Qwen2.5-VL configs (each adds its own).

import { z } from 'zod';

const count = z.number().int().positive();

export const TextConfigSchema = z.object({
  hiddenSize: count,
  numLayers: count,
  numHeads: count,
  numKvHeads: count,
  headDim: count,
  intermediateSize: count,
  rmsNormEps: z.number().positive(),
  ropeTheta: z.number().positive(),
  vocabSize: count,
  maxPositionEmbeddings: count,
  tieWordEmbeddings: z.boolean(),
});
