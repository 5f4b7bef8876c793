// manifest.json of a model pack: everything the runtime needs besides the graphs and tokenizer.json.
// Validated on every load, so a hand-edited or half-written manifest fails with a clear message.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { LlavaConfig } from '../model/config.js';
import { describeIssues } from '../../shared/result.js';
import { QwenConfigSchema, QwenImageSchema } from './qwen-manifest.js';
import { TextConfigSchema } from './text-config-schema.js';

export const MANIFEST_FILE = 'manifest.json';
export const TOKENIZER_FILE = 'tokenizer.json';

const count = z.number().int().positive();
const tokenId = z.number().int().nonnegative();
const size = z.object({ height: count, width: count });

/** CLIPImageProcessor parameters, in preprocessor_config.json's own keys with every default filled in. */
export const ImageParams = z.object({
  do_resize: z.boolean(),
  size: z.union([z.object({ shortest_edge: count }), size]),
  resample: z.number().int(),
  do_center_crop: z.boolean(),
  crop_size: size,
  do_rescale: z.boolean(),
  rescale_factor: z.number().positive(),
  do_normalize: z.boolean(),
  image_mean: z.array(z.number()).length(3),
  image_std: z.array(z.number().positive()).length(3),
  /**
   * How a LLaVA-1.5 image becomes square before the processor: `pad` (the official LLaVA code's
   * expand2square, mean colour, image centred) or `crop` (llava-hf's processor: shortest-edge resize and
   * centre crop). Not a transformers key; packs imported before it existed crop, as they always did.
   */
  image_aspect_ratio: z.enum(['pad', 'crop']).default('crop'),
});
export type ImageParams = z.infer<typeof ImageParams>;

/** LlavaConfig (src/engine/model/config.ts) as stored: the architecture the graphs were built for. */
export const LlavaConfigSchema = z.object({
  text: TextConfigSchema.extend({ slidingWindow: count.optional() }),
  vision: z
    .object({
      hiddenSize: count,
      imageSize: count,
      patchSize: count,
      numChannels: count,
      numLayers: count,
      numHeads: count,
      intermediateSize: count,
      layerNormEps: z.number().positive(),
    })
    .nullable(),
  visionFeatureLayer: z.number().int().nonnegative(),
  visionFeatureSelectStrategy: z.enum(['default', 'full']),
  imageTokenIndex: tokenId,
  projectorBias: z.boolean(),
  bosTokenId: tokenId.nullable(),
  /** Resolved at import (config.json, else generation_config.json), so never null in a pack. */
  eosTokenId: tokenId,
  padTokenId: tokenId.nullable(),
  anyres: z.object({ gridPinpoints: z.array(z.tuple([count, count])).min(1) }).optional(),
}) satisfies z.ZodType<LlavaConfig>;

/**
 * 2: decoder layers read a runtime-owned cache with room to grow and return only the new tokens' keys and values.
 * 3: probes return their layer's k_proj rows, and layers take the rows a probe already projected.
 */
export const PACK_FORMAT_VERSION = 3;

export const PackManifest = z
  .object({
    formatVersion: z.literal(PACK_FORMAT_VERSION),
    id: z.string().regex(/^[0-9a-f]{16}$/),
    name: z.string().min(1),
    created: z.iso.datetime(),
    source: z.object({
      path: z.string(),
      /** sha256 over the checkpoint's config, weights, tokenizer and preprocessor files. */
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      layout: z.enum(['legacy', 'unified', 'gguf', 'qwen2_5_vl']),
    }),
    /** fp32 | fp16: all weights; int8 | int4: decoder and head linears block-quantized (MatMulNBits), vision linears int8, the rest fp16. */
    dtype: z.enum(['fp32', 'fp16', 'int8', 'int4']),
    /** sha256 of each weight file in the pack, by file name. */
    weightsSha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
    /** Architecture dims and special token ids (imageTokenIndex, bos/eos/pad). */
    config: z.union([LlavaConfigSchema, QwenConfigSchema]),
    /** generation_config.json's further end-of-sequence ids, if it lists several. */
    extraEosTokenIds: z.array(tokenId),
    /** Visual tokens per view; 0, with no patch grid, image parameters or vision graph, for a text-only model. */
    numVisualTokens: z.number().int().nonnegative(),
    patchGrid: z.object({ rows: count, cols: count }).nullable(),
    /** CLIPImageProcessor's parameters, or Qwen2-VL's image processor's for a Qwen2.5-VL pack; null for a text-only model. */
    image: z.union([ImageParams, QwenImageSchema]).nullable(),
    /** Jinja chat template; null means the engine's LLaVA-1.5 default (`USER: <image>\n{question} ASSISTANT:`). */
    chatTemplate: z.string().nullable(),
    /** How the template takes messages (text/chat.ts ChatContent): absent = 'parts'; GGUF models' own templates take 'text'. */
    chatContent: z.enum(['parts', 'text']).optional(),
    graphs: z.object({
      embed: z.string(),
      vision: z.string().nullable(),
      head: z.string(),
      layers: z.array(z.string()).min(1),
      probes: z.array(z.string()).min(1),
    }),
    /** Per-model pruning schedule overrides; validated by the shared PruningOverrides schema on read. */
    pruning: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((m) => m.graphs.layers.length === m.config.text.numLayers && m.graphs.probes.length === m.config.text.numLayers, {
    message: 'graphs.layers and graphs.probes must list one graph per text layer',
  });
export type PackManifest = z.infer<typeof PackManifest>;

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** Reads and validates `packDir/manifest.json`. */
export async function loadManifest(packDir: string): Promise<PackManifest> {
  const path = join(packDir, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ManifestError(
      `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (not a model pack)' : (err as Error).message}`,
    );
  }
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version < PACK_FORMAT_VERSION) {
    throw new ManifestError(
      `${path}: imported by an older version (pack format ${version}, now ${PACK_FORMAT_VERSION}); import the checkpoint again`,
    );
  }
  const parsed = PackManifest.safeParse(raw);
  if (!parsed.success) {
    throw new ManifestError(`${path}: invalid manifest (${describeIssues(parsed.error)})`);
  }
  return parsed.data;
}
