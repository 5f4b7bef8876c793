// config.json of a Hugging Face LLaVA-1.5 or LLaVA-NeXT checkpoint -> a typed, fully defaulted LlavaConfig.
// Defaults are those of transformers' LlavaConfig / LlavaNextConfig / LlamaConfig / MistralConfig /
// CLIPVisionConfig, because llava-hf configs omit any key equal to its default. Anything this engine
// cannot run is rejected by name.

import { z } from 'zod';
import { describeIssues } from '../../shared/result.js';

export interface TextConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Mistral: a query attends to at most this many keys (itself and the ones before); absent = full causal attention. */
  slidingWindow?: number;
}

export interface VisionConfig {
  hiddenSize: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  layerNormEps: number;
}

export interface LlavaConfig {
  text: TextConfig;
  /** The CLIP tower; null for a text-only model (a GGUF language model imported without an mmproj). */
  vision: VisionConfig | null;
  /** Index into CLIP's hidden-states tuple [embeddings, layer 1, ..., layer L], already resolved from negative. */
  visionFeatureLayer: number;
  visionFeatureSelectStrategy: 'default' | 'full';
  imageTokenIndex: number;
  projectorBias: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  /** LLaVA-NeXT (model_type llava_next): the AnyRes resolutions, [height, width] in pixels. Absent = LLaVA-1.5, one view. */
  anyres?: { gridPinpoints: [number, number][] };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const SUPPORTED =
  "model_type 'llava' (LLaVA-1.5) or 'llava_next' (LLaVA-NeXT, anyres with the 'default' feature strategy) with a " +
  "'llama' or 'mistral' text model (silu, no attention/MLP bias, no rope_scaling; Mistral's sliding window supported), " +
  "a 'clip_vision_model' vision tower (quick_gelu) and a gelu projector";

/** Text-model defaults that differ by model_type (transformers' LlamaConfig and MistralConfig). */
const TEXT_DEFAULTS = {
  llama: { intermediate_size: 11008, num_key_value_heads: null, rms_norm_eps: 1e-6, max_position_embeddings: 2048, sliding_window: null },
  mistral: {
    intermediate_size: 14336,
    num_key_value_heads: 8,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 4096 * 32,
    sliding_window: 4096,
  },
} as const;

/** LlavaNextConfig's image_grid_pinpoints when config.json omits it. */
export const LLAVA_NEXT_DEFAULT_PINPOINTS: [number, number][] = [
  [336, 672],
  [672, 336],
  [672, 672],
  [1008, 336],
  [336, 1008],
];

const count = z.number().int().positive();
const tokenId = z.number().int().nonnegative().nullable().optional();
/** eos_token_id may be a list in newer configs; the first entry is the primary one. */
const tokenIdOrList = z.union([
  tokenId,
  z
    .array(z.number().int().nonnegative())
    .min(1)
    .transform((a) => a[0]),
]);

const textSchema = z.looseObject({
  model_type: z.string().default('llama'),
  hidden_size: count.default(4096),
  num_hidden_layers: count.default(32),
  num_attention_heads: count.default(32),
  num_key_value_heads: count.nullable().optional(),
  head_dim: count.nullable().optional(),
  intermediate_size: count.optional(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  // transformers 5 moves rope_theta and the rope type into rope_parameters.
  rope_parameters: z.looseObject({ rope_theta: z.number().positive().optional(), rope_type: z.string().optional() }).optional(),
  vocab_size: count.default(32000),
  max_position_embeddings: count.optional(),
  sliding_window: count.nullable().optional(),
  hidden_act: z.string().default('silu'),
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  rope_scaling: z.unknown().optional(),
  tie_word_embeddings: z.boolean().default(false),
  bos_token_id: tokenId,
  eos_token_id: tokenIdOrList,
  pad_token_id: tokenId,
});

/** CLIPVisionConfig's own defaults (used when vision_config is given). */
const visionSchema = z.looseObject({
  model_type: z.string().default('clip_vision_model'),
  hidden_size: count.default(768),
  image_size: count.default(224),
  patch_size: count.default(32),
  num_channels: count.default(3),
  num_hidden_layers: count.default(12),
  num_attention_heads: count.default(12),
  intermediate_size: count.default(3072),
  layer_norm_eps: z.number().positive().default(1e-5),
  hidden_act: z.string().default('quick_gelu'),
});

/** What LlavaConfig builds when vision_config is absent altogether (CLIP ViT-L/14-336). */
const LLAVA_DEFAULT_VISION = {
  model_type: 'clip_vision_model',
  hidden_size: 1024,
  intermediate_size: 4096,
  patch_size: 14,
  image_size: 336,
  num_hidden_layers: 24,
  num_attention_heads: 16,
};

const llavaSchema = z.looseObject({
  model_type: z.string(),
  text_config: z.record(z.string(), z.unknown()).optional(),
  vision_config: z.record(z.string(), z.unknown()).optional(),
  image_token_index: z.number().int().nonnegative().optional(),
  image_token_id: z.number().int().nonnegative().optional(), // transformers 5's name for it
  projector_hidden_act: z.string().default('gelu'),
  multimodal_projector_bias: z.boolean().default(true),
  vision_feature_layer: z.union([z.number().int(), z.array(z.number().int())]).default(-2),
  vision_feature_select_strategy: z.string().default('default'),
  image_grid_pinpoints: z
    .array(z.tuple([count, count]))
    .min(1)
    .nullable()
    .optional(),
  tie_word_embeddings: z.boolean().optional(),
  bos_token_id: tokenId,
  eos_token_id: tokenIdOrList,
  pad_token_id: tokenId,
});

/** Parses config.json text. `source` names the file in errors. */
export function parseLlavaConfig(jsonText: string, source = 'config.json'): LlavaConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(jsonText);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const top = parseWith(llavaSchema, raw, source);
  const text = parseWith(textSchema, top.text_config ?? {}, `${source} text_config`);
  const vision = parseWith(visionSchema, top.vision_config ?? LLAVA_DEFAULT_VISION, `${source} vision_config`);
  const reject = (what: string): never => {
    throw new ConfigError(`${source}: unsupported ${what}; supported: ${SUPPORTED}`);
  };

  if (top.model_type !== 'llava' && top.model_type !== 'llava_next') reject(`model_type '${top.model_type}'`);
  if (text.model_type !== 'llama' && text.model_type !== 'mistral') reject(`text_config.model_type '${text.model_type}'`);
  const textDefaults = TEXT_DEFAULTS[text.model_type as keyof typeof TEXT_DEFAULTS];
  if (text.hidden_act !== 'silu') reject(`text_config.hidden_act '${text.hidden_act}'`);
  if (text.attention_bias) reject('text_config.attention_bias true');
  if (text.mlp_bias) reject('text_config.mlp_bias true');
  if (!isDefaultRope(text.rope_scaling)) reject(`text_config.rope_scaling ${JSON.stringify(text.rope_scaling)}`);
  if ((text.rope_parameters?.rope_type ?? 'default') !== 'default')
    reject(`text_config.rope_parameters ${JSON.stringify(text.rope_parameters)}`);
  if (vision.model_type !== 'clip_vision_model') reject(`vision_config.model_type '${vision.model_type}'`);
  if (vision.hidden_act !== 'quick_gelu') reject(`vision_config.hidden_act '${vision.hidden_act}'`);
  if (top.projector_hidden_act !== 'gelu') reject(`projector_hidden_act '${top.projector_hidden_act}'`);
  if (Array.isArray(top.vision_feature_layer)) reject('a list vision_feature_layer (multi-layer features)');
  const strategy = top.vision_feature_select_strategy;
  if (strategy !== 'default' && strategy !== 'full') reject(`vision_feature_select_strategy '${strategy}' (use 'default' or 'full')`);
  // transformers' LlavaNextModel cannot tile CLS-carrying features either (its view() fails), so no checkpoint ships it.
  if (top.model_type === 'llava_next' && strategy === 'full') reject("vision_feature_select_strategy 'full' with llava_next");
  const anyres = top.model_type === 'llava_next' ? { gridPinpoints: top.image_grid_pinpoints ?? LLAVA_NEXT_DEFAULT_PINPOINTS } : undefined;
  if (top.model_type === 'llava' && top.image_grid_pinpoints) reject("image_grid_pinpoints with model_type 'llava' (that is llava_next)");

  const numKvHeads = text.num_key_value_heads ?? textDefaults.num_key_value_heads ?? text.num_attention_heads;
  // LlamaConfig has no sliding window: the key means nothing there, as in transformers.
  const slidingWindow =
    text.model_type === 'mistral' && text.sliding_window !== undefined ? text.sliding_window : textDefaults.sliding_window;
  const headDim = text.head_dim ?? text.hidden_size / text.num_attention_heads;
  const ensure = (ok: boolean, what: string) => {
    if (!ok) throw new ConfigError(`${source}: ${what}`);
  };
  ensure(
    Number.isInteger(headDim),
    `text hidden_size ${text.hidden_size} is not divisible by num_attention_heads ${text.num_attention_heads}`,
  );
  ensure(headDim % 2 === 0, `text head_dim ${headDim} must be even for RoPE`);
  ensure(
    text.num_attention_heads % numKvHeads === 0,
    `num_attention_heads ${text.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`,
  );
  ensure(
    vision.hidden_size % vision.num_attention_heads === 0,
    `vision hidden_size ${vision.hidden_size} is not divisible by num_attention_heads ${vision.num_attention_heads}`,
  );
  ensure(
    vision.image_size % vision.patch_size === 0,
    `vision image_size ${vision.image_size} is not a multiple of patch_size ${vision.patch_size}`,
  );
  for (const [h, w] of anyres?.gridPinpoints ?? [])
    ensure(
      h % vision.image_size === 0 && w % vision.image_size === 0,
      `image_grid_pinpoints entry [${h}, ${w}] is not a whole number of ${vision.image_size}-pixel tiles`,
    );

  const L = vision.num_hidden_layers;
  const layer = top.vision_feature_layer as number;
  const featureLayer = layer < 0 ? L + 1 + layer : layer;
  ensure(featureLayer >= 0 && featureLayer <= L, `vision_feature_layer ${layer} is out of range for ${L} CLIP layers`);

  return {
    text: {
      hiddenSize: text.hidden_size,
      numLayers: text.num_hidden_layers,
      numHeads: text.num_attention_heads,
      numKvHeads,
      headDim,
      intermediateSize: text.intermediate_size ?? textDefaults.intermediate_size,
      rmsNormEps: text.rms_norm_eps ?? textDefaults.rms_norm_eps,
      ropeTheta: text.rope_parameters?.rope_theta ?? text.rope_theta ?? 10000,
      vocabSize: text.vocab_size,
      maxPositionEmbeddings: text.max_position_embeddings ?? textDefaults.max_position_embeddings,
      tieWordEmbeddings: top.tie_word_embeddings ?? text.tie_word_embeddings,
      ...(slidingWindow === null ? {} : { slidingWindow }),
    },
    vision: {
      hiddenSize: vision.hidden_size,
      imageSize: vision.image_size,
      patchSize: vision.patch_size,
      numChannels: vision.num_channels,
      numLayers: L,
      numHeads: vision.num_attention_heads,
      intermediateSize: vision.intermediate_size,
      layerNormEps: vision.layer_norm_eps,
    },
    visionFeatureLayer: featureLayer,
    visionFeatureSelectStrategy: strategy as 'default' | 'full',
    imageTokenIndex: top.image_token_index ?? top.image_token_id ?? 32000,
    projectorBias: top.multimodal_projector_bias,
    bosTokenId: top.bos_token_id ?? text.bos_token_id ?? null,
    eosTokenId: top.eos_token_id ?? text.eos_token_id ?? null,
    padTokenId: top.pad_token_id ?? text.pad_token_id ?? null,
    ...(anyres ? { anyres } : {}),
  };
}

/**
 * Weights in the checkpoint as Hugging Face counts them: the whole CLIP vision tower (every layer and
 * the post-layernorm, even those LLaVA does not use), the projector, the decoder with its head, and
 * LLaVA-NeXT's image_newline vector.
 */
export function parameterCount({ vision: v, text: t, projectorBias, anyres }: LlavaConfig): number {
  const linear = (inputs: number, outputs: number, bias: boolean) => inputs * outputs + (bias ? outputs : 0);
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const textLayer = 2 * t.hiddenSize * q + 2 * t.hiddenSize * kv + 3 * t.hiddenSize * t.intermediateSize + 2 * t.hiddenSize;
  const embeddings = t.vocabSize * t.hiddenSize;
  const text = embeddings + t.numLayers * textLayer + t.hiddenSize + (t.tieWordEmbeddings ? 0 : embeddings);
  if (!v) return text;
  const layerNorm = 2 * v.hiddenSize;
  const patches = (v.imageSize / v.patchSize) ** 2;
  const visionLayer =
    4 * linear(v.hiddenSize, v.hiddenSize, true) +
    linear(v.hiddenSize, v.intermediateSize, true) +
    linear(v.intermediateSize, v.hiddenSize, true) +
    2 * layerNorm;
  const vision =
    v.hiddenSize + // class embedding
    v.hiddenSize * v.numChannels * v.patchSize ** 2 + // patch embedding (no bias)
    (patches + 1) * v.hiddenSize + // position embedding
    v.numLayers * visionLayer +
    2 * layerNorm; // pre- and post-layernorm
  const projector = linear(v.hiddenSize, t.hiddenSize, projectorBias) + linear(t.hiddenSize, t.hiddenSize, projectorBias);
  const newline = anyres ? t.hiddenSize : 0;
  return vision + projector + text + newline;
}

/** The vision tower of a model that has one; an image given to a text-only model fails here with a clear message. */
export function visionOf(config: LlavaConfig): VisionConfig {
  if (!config.vision) throw new ConfigError('this model has no vision tower (a text-only model): ask without an image');
  return config.vision;
}

/** Visual tokens per view (LLaVA-1.5's image, NeXT's base view or one tile): the patch grid, plus CLS under the 'full' strategy; 0 without vision. */
export function numVisualTokens(config: LlavaConfig): number {
  if (!config.vision) return 0;
  const grid = config.vision.imageSize / config.vision.patchSize;
  return grid * grid + (config.visionFeatureSelectStrategy === 'full' ? 1 : 0);
}

function isDefaultRope(scaling: unknown): boolean {
  if (scaling === undefined || scaling === null) return true;
  const type = (scaling as { rope_type?: unknown; type?: unknown }).rope_type ?? (scaling as { type?: unknown }).type;
  return type === 'default';
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ConfigError(`${where}: ${describeIssues(parsed.error)}`);
}
