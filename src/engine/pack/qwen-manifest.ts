// The parts of a Qwen2.5-VL pack's manifest.json that differ from a LLaVA pack's: the parsed QwenVLConfig and
// the image processor's parameters (src/engine/image/qwen.ts).

import { z } from 'zod';
import type { QwenImageParams } from '../image/qwen.js';
import type { QwenVLConfig } from '../model/qwen-config.js';
import { TextConfigSchema } from './text-config-schema.js';

const count = z.number().int().positive();
const tokenId = z.number().int().nonnegative();
const triple = z.tuple([z.number(), z.number(), z.number()]);

export const QwenConfigSchema = z.object({
  family: z.literal('qwen2_5_vl'),
  text: TextConfigSchema.extend({ mropeSection: z.tuple([count, count, count]), qkvBias: z.literal(true) }),
  vision: z.object({
    depth: count,
    hiddenSize: count,
    intermediateSize: count,
    numHeads: count,
    patchSize: count,
    temporalPatchSize: count,
    spatialMergeSize: count,
    windowSize: count,
    fullAttBlockIndexes: z.array(z.number().int().nonnegative()),
    outHiddenSize: count,
    inChannels: count,
  }),
  imageTokenId: tokenId,
  videoTokenId: tokenId,
  visionStartTokenId: tokenId,
  visionEndTokenId: tokenId,
  bosTokenId: tokenId.nullable(),
  /** Resolved at import (config.json, else generation_config.json), so never null in a pack. */
  eosTokenId: tokenId,
  padTokenId: tokenId.nullable(),
}) satisfies z.ZodType<QwenVLConfig>;

export const QwenImageSchema = z.object({
  minPixels: count,
  maxPixels: count,
  patchSize: count,
  mergeSize: count,
  temporalPatchSize: count,
  rescaleFactor: z.number().positive(),
  mean: triple,
  std: triple,
}) satisfies z.ZodType<QwenImageParams>;
