// config.json of a Hugging Face Qwen2.5-VL checkpoint (model_type qwen2_5_vl) -> a typed, fully defaulted QwenVLConfig.
// Two layouts exist: the checkpoints on the Hub (transformers 4.x) keep the text model's keys at the top level with
// `rope_scaling: {type: 'mrope', mrope_section}`; transformers 5 nests them in `text_config` with `rope_parameters`.
// Defaults are those of transformers' Qwen2_5_VLTextConfig / Qwen2_5_VLVisionConfig. Anything this engine cannot run
// is rejected by name.

import { z } from 'zod';
import { describeIssues } from '../../shared/result.js';
import { ConfigError, type LlavaConfig, type TextConfig } from './config.js';

/** The Qwen2 decoder: Llama's shape with biased q/k/v projections and M-RoPE. */
export interface QwenTextConfig extends TextConfig {
  /** Rotary frequencies per axis (temporal, height, width), summing to headDim / 2. */
  mropeSection: [number, number, number];
  /** q_proj, k_proj and v_proj carry a bias (o_proj and the MLP do not). */
  qkvBias: true;
}

/** The Qwen2.5 ViT: 14 px patches two frames deep, RMSNorm, SwiGLU, 2D rotary, window attention, a 2x2 patch merger. */
export interface QwenVisionConfig {
  depth: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  /** Window attention's side in pixels (112 = 4 x 4 merged cells). */
  windowSize: number;
  /** Blocks with full attention over the whole image; the others attend within their window. */
  fullAttBlockIndexes: number[];
  /** The merger's output width: the decoder's hidden size. */
  outHiddenSize: number;
  inChannels: number;
}

export interface QwenVLConfig {
  family: 'qwen2_5_vl';
  text: QwenTextConfig;
  vision: QwenVisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
}

/** Vision RoPE's base and the ViT's RMSNorm epsilon: fixed in transformers' Qwen2.5 vision code. */
export const QWEN_VISION_ROPE_THETA = 10000;
export const QWEN_VISION_NORM_EPS = 1e-6;

const SUPPORTED = "model_type 'qwen2_5_vl' (images; no video) with silu in both towers, default or mrope rotary scaling, no sliding window";

const count = z.number().int().positive();
const tokenId = z.number().int().nonnegative().nullable().optional();
const tokenIdOrList = z.union([
  tokenId,
  z
    .array(z.number().int().nonnegative())
    .min(1)
    .transform((a) => a[0]),
]);
const rope = z.looseObject({
  type: z.string().optional(),
  rope_type: z.string().optional(),
  rope_theta: z.number().positive().optional(),
  mrope_section: z.array(count).length(3).optional(),
});

const textSchema = z.looseObject({
  hidden_size: count.default(8192),
  num_hidden_layers: count.default(80),
  num_attention_heads: count.default(64),
  num_key_value_heads: count.nullable().optional(),
  intermediate_size: count.default(29568),
  rms_norm_eps: z.number().positive().default(1e-5),
  rope_theta: z.number().positive().optional(),
  rope_scaling: rope.nullable().optional(),
  rope_parameters: rope.nullable().optional(),
  vocab_size: count.default(152064),
  max_position_embeddings: count.default(32768),
  hidden_act: z.string().default('silu'),
  use_sliding_window: z.boolean().default(false),
  tie_word_embeddings: z.boolean().optional(),
  bos_token_id: tokenId,
  eos_token_id: tokenIdOrList,
  pad_token_id: tokenId,
});

const visionSchema = z.looseObject({
  depth: count.default(32),
  hidden_size: count.default(3584),
  intermediate_size: count.default(3420),
  num_heads: count.default(16),
  in_channels: count.optional(),
  in_chans: count.optional(), // the Hub checkpoints' name for it
  patch_size: count.default(14),
  spatial_merge_size: count.default(2),
  temporal_patch_size: count.default(2),
  window_size: count.default(112),
  out_hidden_size: count.default(3584),
  fullatt_block_indexes: z.array(z.number().int().nonnegative()).default([7, 15, 23, 31]),
  hidden_act: z.string().default('silu'),
});

const topSchema = z.looseObject({
  model_type: z.string(),
  text_config: z.record(z.string(), z.unknown()).optional(),
  vision_config: z.record(z.string(), z.unknown()).optional(),
  image_token_id: z.number().int().nonnegative().default(151655),
  video_token_id: z.number().int().nonnegative().default(151656),
  vision_start_token_id: z.number().int().nonnegative().default(151652),
  vision_end_token_id: z.number().int().nonnegative().default(151653),
  tie_word_embeddings: z.boolean().optional(),
});

export function isQwenModelType(jsonText: string): boolean {
  try {
    return (JSON.parse(jsonText) as { model_type?: unknown }).model_type === 'qwen2_5_vl';
  } catch {
    return false;
  }
}

/** Parses config.json text of a qwen2_5_vl checkpoint. `source` names the file in errors. */
export function parseQwenConfig(jsonText: string, source = 'config.json'): QwenVLConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(jsonText) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const top = parseWith(topSchema, raw, source);
  // transformers 5 nests the text model; the Hub's configs keep its keys beside vision_config.
  const text = parseWith(textSchema, top.text_config ?? raw, `${source} text_config`);
  const vision = parseWith(visionSchema, top.vision_config ?? {}, `${source} vision_config`);
  const reject = (what: string): never => {
    throw new ConfigError(`${source}: unsupported ${what}; supported: ${SUPPORTED}`);
  };
  const ensure = (ok: boolean, what: string) => {
    if (!ok) throw new ConfigError(`${source}: ${what}`);
  };

  if (top.model_type !== 'qwen2_5_vl') reject(`model_type '${top.model_type}'`);
  if (text.hidden_act !== 'silu') reject(`text hidden_act '${text.hidden_act}'`);
  if (vision.hidden_act !== 'silu') reject(`vision_config.hidden_act '${vision.hidden_act}'`);
  if (text.use_sliding_window) reject('use_sliding_window true');
  const ropeSpec = text.rope_parameters ?? text.rope_scaling ?? {};
  const ropeType = ropeSpec.rope_type ?? ropeSpec.type ?? 'default';
  if (ropeType !== 'default' && ropeType !== 'mrope') reject(`rotary scaling '${ropeType}'`);

  const headDim = text.hidden_size / text.num_attention_heads;
  const numKvHeads = text.num_key_value_heads ?? text.num_attention_heads;
  ensure(
    Number.isInteger(headDim) && headDim % 2 === 0,
    `text hidden_size ${text.hidden_size} / ${text.num_attention_heads} heads is no even head size`,
  );
  ensure(text.num_attention_heads % numKvHeads === 0, `num_attention_heads is not a multiple of num_key_value_heads ${numKvHeads}`);
  const mropeSection = (ropeSpec.mrope_section ?? [16, 24, 24]) as [number, number, number];
  ensure(
    mropeSection[0] + mropeSection[1] + mropeSection[2] === headDim / 2,
    `mrope_section [${mropeSection.join(', ')}] must sum to head_dim / 2 = ${headDim / 2}`,
  );
  const visionHeadDim = vision.hidden_size / vision.num_heads;
  ensure(Number.isInteger(visionHeadDim) && visionHeadDim % 4 === 0, `vision hidden_size / num_heads must be a multiple of 4`);
  ensure(
    vision.out_hidden_size === text.hidden_size,
    `vision out_hidden_size ${vision.out_hidden_size} is not the text hidden_size ${text.hidden_size}`,
  );
  const cell = vision.patch_size * vision.spatial_merge_size;
  ensure(vision.window_size % cell === 0, `vision window_size ${vision.window_size} is not a multiple of ${cell} px (a merged cell)`);
  ensure(
    vision.fullatt_block_indexes.every((i) => i < vision.depth),
    `fullatt_block_indexes [${vision.fullatt_block_indexes.join(', ')}] outside the ${vision.depth} vision blocks`,
  );

  return {
    family: 'qwen2_5_vl',
    text: {
      hiddenSize: text.hidden_size,
      numLayers: text.num_hidden_layers,
      numHeads: text.num_attention_heads,
      numKvHeads,
      headDim,
      intermediateSize: text.intermediate_size,
      rmsNormEps: text.rms_norm_eps,
      ropeTheta: ropeSpec.rope_theta ?? text.rope_theta ?? 1e6,
      vocabSize: text.vocab_size,
      maxPositionEmbeddings: text.max_position_embeddings,
      tieWordEmbeddings: top.tie_word_embeddings ?? text.tie_word_embeddings ?? false,
      mropeSection,
      qkvBias: true,
    },
    vision: {
      depth: vision.depth,
      hiddenSize: vision.hidden_size,
      intermediateSize: vision.intermediate_size,
      numHeads: vision.num_heads,
      patchSize: vision.patch_size,
      temporalPatchSize: vision.temporal_patch_size,
      spatialMergeSize: vision.spatial_merge_size,
      windowSize: vision.window_size,
      fullAttBlockIndexes: vision.fullatt_block_indexes,
      outHiddenSize: vision.out_hidden_size,
      inChannels: vision.in_channels ?? vision.in_chans ?? 3,
    },
    imageTokenId: top.image_token_id,
    videoTokenId: top.video_token_id,
    visionStartTokenId: top.vision_start_token_id,
    visionEndTokenId: top.vision_end_token_id,
    bosTokenId: text.bos_token_id ?? null,
    eosTokenId: text.eos_token_id ?? null,
    padTokenId: text.pad_token_id ?? null,
  };
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ConfigError(`${where}: ${describeIssues(parsed.error)}`);
}

/** The architectures a pack can hold: LLaVA-1.5 / LLaVA-NeXT (CLIP + Llama/Mistral) or Qwen2.5-VL. */
export type ModelConfig = LlavaConfig | QwenVLConfig;

export function isQwen<C extends ModelConfig>(config: C): config is Extract<C, { family: 'qwen2_5_vl' }> {
  return 'family' in config && config.family === 'qwen2_5_vl';
}

/** Weights as Hugging Face counts them: the ViT with its merger, and the decoder with its head (once when tied). */
export function qwenParameterCount({ vision: v, text: t }: QwenVLConfig): number {
  const linear = (inputs: number, outputs: number, bias: boolean) => inputs * outputs + (bias ? outputs : 0);
  const patchEmbed = v.hiddenSize * v.inChannels * v.temporalPatchSize * v.patchSize ** 2;
  const block =
    2 * v.hiddenSize +
    linear(v.hiddenSize, 3 * v.hiddenSize, true) +
    linear(v.hiddenSize, v.hiddenSize, true) +
    2 * linear(v.hiddenSize, v.intermediateSize, true) +
    linear(v.intermediateSize, v.hiddenSize, true);
  const merged = v.hiddenSize * v.spatialMergeSize ** 2;
  const merger = v.hiddenSize + linear(merged, merged, true) + linear(merged, v.outHiddenSize, true);
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const layer =
    linear(t.hiddenSize, q, true) +
    2 * linear(t.hiddenSize, kv, true) +
    linear(q, t.hiddenSize, false) +
    3 * t.hiddenSize * t.intermediateSize +
    2 * t.hiddenSize;
  const embeddings = t.vocabSize * t.hiddenSize;
  return patchEmbed + v.depth * block + merger + embeddings + t.numLayers * layer + t.hiddenSize + (t.tieWordEmbeddings ? 0 : embeddings);
}
