// Writes a real Hugging Face LLaVA-1.5 or LLaVA-NeXT checkpoint folder with seeded random weights:
// config.json, model.safetensors (or shards + index), tokenizer.json, tokenizer_config.json,
// preprocessor_config.json, generation_config.json. Everything the importer reads, nothing faked.
// Weights are made and written a chunk at a time, so a 7B or 13B checkpoint needs megabytes of memory, not its size.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../image/preprocess.js';
import { writeSafetensorsStreamed, type FloatDtype, type StreamedTensor } from '../io/safetensors.js';
import { legacyToUnifiedName } from '../model/weights.js';
import { mulberry32 } from '../util/mulberry32.js';
import { buildSyntheticTokenizer, SPECIAL_TOKENS, SYNTHETIC_CHAT_TEMPLATE } from './synthetic-tokenizer.js';

/** Checkpoint dtype of the safetensors files. */
export type CheckpointDtype = 'fp32' | 'fp16' | 'bf16';

/** Model shape. Text = Llama decoder, vision = CLIP ViT. */
export interface CheckpointShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  visionHidden: number;
  visionIntermediate: number;
  visionLayers: number;
  visionHeads: number;
  imageSize: number;
  patchSize: number;
}

/** CLIP ViT-L/14 at 336 px, LLaVA-1.5's vision tower: 576 visual tokens. */
const CLIP_L_336 = {
  visionHidden: 1024,
  visionIntermediate: 4096,
  visionLayers: 24,
  visionHeads: 16,
  imageSize: 336,
  patchSize: 14,
};

/** LLaVA-1.5's vocabulary: Llama's 32000 tokens plus <image> and padding, as llava-hf's configs give it. */
const LLAVA_VOCAB = 32064;

export const CHECKPOINT_PRESETS = {
  /** MHA, 16 visual tokens (28 px / patch 7). */
  tiny: {
    hidden: 64,
    intermediate: 128,
    layers: 4,
    heads: 4,
    kvHeads: 4,
    visionHidden: 32,
    visionIntermediate: 64,
    visionLayers: 3,
    visionHeads: 2,
    imageSize: 28,
    patchSize: 7,
  },
  /** Grouped-query attention (6 query heads share 2 KV heads), 36 visual tokens (42 px / patch 7). */
  'tiny-gqa': {
    hidden: 96,
    intermediate: 192,
    layers: 6,
    heads: 6,
    kvHeads: 2,
    visionHidden: 48,
    visionIntermediate: 96,
    visionLayers: 3,
    visionHeads: 4,
    imageSize: 42,
    patchSize: 7,
  },
  /** `bench engine`'s model: 12 layers, hidden 512, a two-layer vision tower (only the decoder is timed), 576 visual tokens. */
  bench: {
    hidden: 512,
    intermediate: 1344,
    layers: 12,
    heads: 4,
    kvHeads: 4,
    visionHidden: 32,
    visionIntermediate: 64,
    visionLayers: 2,
    visionHeads: 2,
    imageSize: 336,
    patchSize: 14,
  },
  /** llava-hf/llava-1.5-7b-hf: Vicuna-7B (32 layers, hidden 4096, MLP 11008) on CLIP ViT-L/14 at 336 px. */
  'llava-1.5-7b': {
    hidden: 4096,
    intermediate: 11008,
    layers: 32,
    heads: 32,
    kvHeads: 32,
    vocabSize: LLAVA_VOCAB,
    ...CLIP_L_336,
  },
  /** llava-hf/llava-1.5-13b-hf: Vicuna-13B (40 layers, hidden 5120, MLP 13824) on the same vision tower. */
  'llava-1.5-13b': {
    hidden: 5120,
    intermediate: 13824,
    layers: 40,
    heads: 40,
    kvHeads: 40,
    vocabSize: LLAVA_VOCAB,
    ...CLIP_L_336,
  },
} satisfies Record<string, CheckpointShape & { vocabSize?: number }>;

export type CheckpointPreset = keyof typeof CHECKPOINT_PRESETS;

export interface SyntheticCheckpointOptions extends Partial<CheckpointShape> {
  preset?: CheckpointPreset; // default 'tiny'; the other fields override it
  seed?: number; // default 1
  dtype?: CheckpointDtype; // default fp32
  shards?: number; // > 1 writes model-0000i-of-0000n.safetensors + model.safetensors.index.json
  /** Rows of embed_tokens and lm_head (config vocab_size), at least the tokenizer's size; default the tokenizer's size or the preset's. */
  vocabSize?: number;
  layout?: 'legacy' | 'new'; // weight names: llava-hf (transformers < 4.52) or transformers >= 4.52
  chatTemplate?: boolean | string; // true: a LLaVA-style template in tokenizer_config.json; default none
  visionFeatureLayer?: number; // default -2
  selectStrategy?: 'default' | 'full'; // default 'default' (drops CLS)
  tieWordEmbeddings?: boolean; // lm_head = embed_tokens (no lm_head tensor written); default false
  rmsNormEps?: number; // default 1e-5
  ropeTheta?: number; // default 10000
  /** LLaVA-NeXT (model_type llava_next) with these AnyRes resolutions ([height, width], multiples of imageSize). */
  gridPinpoints?: [number, number][];
  /** The decoder's model_type; 'mistral' configs also get `slidingWindow` (null = none). */
  textModel?: 'llama' | 'mistral';
  slidingWindow?: number | null;
}

export interface SyntheticCheckpoint {
  dir: string;
  shape: CheckpointShape;
  config: Record<string, unknown>;
  vocabSize: number;
  /** Visual tokens per view: (imageSize / patchSize)^2 ('default' strategy); a NeXT image has more. */
  numVisualTokens: number;
  tokens: { bos: number; eos: number; image: number; pad: number };
}

/** A shape no LLaVA checkpoint can have. */
export class CheckpointShapeError extends Error {}

// ---- seeded random numbers ----

function hashString(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Values per chunk while writing: even, so Box-Muller pairs never straddle two chunks. */
const CHUNK_VALUES = 1 << 20;

/**
 * Each tensor gets its own stream seeded by (seed, name), so layouts and shard splits share values. The
 * values come in chunks of `chunk` (even) and are the same whatever the chunk size.
 */
export function* gaussianChunks(seed: number, name: string, count: number, init: Init, chunk = CHUNK_VALUES): Generator<Float32Array> {
  const { mean, std } = init;
  const uniform = mulberry32(seed ^ hashString(name));
  for (let start = 0; start < count; start += chunk) {
    const out = new Float32Array(Math.min(chunk, count - start));
    for (let i = 0; i < out.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - uniform()));
      const theta = 2 * Math.PI * uniform();
      out[i] = mean + std * r * Math.cos(theta);
      if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(theta);
    }
    yield out;
  }
}

// ---- weights (canonical = legacy llava-hf names) ----

export type Init = { shape: number[]; mean: number; std: number };

function weightSpecs(s: CheckpointShape, vocabSize: number, next: boolean): Map<string, Init> {
  const specs = new Map<string, Init>();
  const normal = (name: string, shape: number[], std: number, mean = 0) => specs.set(name, { shape, mean, std });
  // Linear layers use std 1/sqrt(fan_in) so activations stay O(1); norm gains vary around 1 so the gain matters.
  const linear = (prefix: string, out: number, inp: number, bias: boolean) => {
    normal(`${prefix}.weight`, [out, inp], 1 / Math.sqrt(inp));
    if (bias) normal(`${prefix}.bias`, [out], 0.1);
  };
  const layerNorm = (prefix: string, dim: number) => {
    normal(`${prefix}.weight`, [dim], 0.2, 1);
    normal(`${prefix}.bias`, [dim], 0.1);
  };

  const v = 'vision_tower.vision_model';
  const numPatches = (s.imageSize / s.patchSize) ** 2;
  normal(`${v}.embeddings.class_embedding`, [s.visionHidden], 1);
  normal(`${v}.embeddings.patch_embedding.weight`, [s.visionHidden, 3, s.patchSize, s.patchSize], 1 / Math.sqrt(3 * s.patchSize ** 2));
  normal(`${v}.embeddings.position_embedding.weight`, [numPatches + 1, s.visionHidden], 0.5);
  layerNorm(`${v}.pre_layrnorm`, s.visionHidden); // sic: HF's CLIP spells it "layrnorm"
  for (let i = 0; i < s.visionLayers; i++) {
    const p = `${v}.encoder.layers.${i}`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(`${p}.self_attn.${proj}`, s.visionHidden, s.visionHidden, true);
    layerNorm(`${p}.layer_norm1`, s.visionHidden);
    linear(`${p}.mlp.fc1`, s.visionIntermediate, s.visionHidden, true);
    linear(`${p}.mlp.fc2`, s.visionHidden, s.visionIntermediate, true);
    layerNorm(`${p}.layer_norm2`, s.visionHidden);
  }
  layerNorm(`${v}.post_layernorm`, s.visionHidden); // present in real checkpoints, unused by LLaVA

  if (next) normal('image_newline', [s.hidden], 1);
  linear('multi_modal_projector.linear_1', s.hidden, s.visionHidden, true);
  linear('multi_modal_projector.linear_2', s.hidden, s.hidden, true);

  const t = 'language_model.model';
  const headDim = s.hidden / s.heads;
  normal(`${t}.embed_tokens.weight`, [vocabSize, s.hidden], 1);
  for (let i = 0; i < s.layers; i++) {
    const p = `${t}.layers.${i}`;
    linear(`${p}.self_attn.q_proj`, s.heads * headDim, s.hidden, false);
    linear(`${p}.self_attn.k_proj`, s.kvHeads * headDim, s.hidden, false);
    linear(`${p}.self_attn.v_proj`, s.kvHeads * headDim, s.hidden, false);
    linear(`${p}.self_attn.o_proj`, s.hidden, s.heads * headDim, false);
    linear(`${p}.mlp.gate_proj`, s.intermediate, s.hidden, false);
    linear(`${p}.mlp.up_proj`, s.intermediate, s.hidden, false);
    linear(`${p}.mlp.down_proj`, s.hidden, s.intermediate, false);
    normal(`${p}.input_layernorm.weight`, [s.hidden], 0.2, 1);
    normal(`${p}.post_attention_layernorm.weight`, [s.hidden], 0.2, 1);
  }
  normal(`${t}.norm.weight`, [s.hidden], 0.2, 1);
  // A wider lm_head spreads the logits so greedy decoding is not a flat tie-break.
  normal('language_model.lm_head.weight', [vocabSize, s.hidden], 3 / Math.sqrt(s.hidden));
  return specs;
}

// ---- files ----

export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

export const SAFETENSORS_DTYPE: Record<CheckpointDtype, FloatDtype> = { fp32: 'F32', fp16: 'F16', bf16: 'BF16' };

/** Writes the weights in `shards` files, or in files of about 5 GB (as transformers) when not given. */
export function writeCheckpointWeights(dir: string, tensors: Map<string, StreamedTensor>, shards?: number): Promise<void> {
  const totalBytes = [...tensors.values()].reduce((sum, t) => sum + tensorBytes(t), 0);
  return writeWeights(dir, tensors, shards ?? Math.max(1, Math.ceil(totalBytes / AUTO_SHARD_BYTES)));
}

/** Writes model.safetensors, or `shards` files named as transformers names them plus the index. */
async function writeWeights(dir: string, tensors: Map<string, StreamedTensor>, shards: number): Promise<void> {
  const names = [...tensors.keys()];
  const entries = (part: string[]) => part.map((n): [string, StreamedTensor] => [n, tensors.get(n)!]);
  if (shards <= 1) return writeSafetensorsStreamed(join(dir, 'model.safetensors'), entries(names), { format: 'pt' });
  const perShard = Math.ceil(names.length / shards);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let i = 0; i < shards; i++) {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = names.slice(i * perShard, (i + 1) * perShard);
    for (const name of part) {
      weightMap[name] = file;
      totalSize += tensorBytes(tensors.get(name)!);
    }
    await writeSafetensorsStreamed(join(dir, file), entries(part), { format: 'pt' });
  }
  writeJson(join(dir, 'model.safetensors.index.json'), { metadata: { total_size: totalSize }, weight_map: weightMap });
}

function tensorBytes(t: { dtype: FloatDtype; shape: number[] }): number {
  return t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F32' ? 4 : 2);
}

/** Without `shards`: files of about this size, as transformers' default of 5 GB per shard. */
const AUTO_SHARD_BYTES = 5e9;

/** The preset's shape with the options' fields over it. */
export function resolveShape(opts: SyntheticCheckpointOptions): CheckpointShape {
  const preset = presetOf(opts.preset);
  const shape = {} as CheckpointShape;
  for (const key of SHAPE_KEYS) shape[key] = opts[key] ?? preset[key];
  return shape;
}

function presetOf(name: CheckpointPreset | undefined): CheckpointShape & { vocabSize?: number } {
  return CHECKPOINT_PRESETS[name ?? 'tiny'];
}

function presetVocab(name: CheckpointPreset | undefined): number | undefined {
  return presetOf(name).vocabSize;
}

/** The fields of a shape, in the order the presets list them. */
export const SHAPE_KEYS = Object.keys(CHECKPOINT_PRESETS.tiny) as (keyof CheckpointShape)[];

export const TORCH_DTYPE: Record<CheckpointDtype, string> = { fp32: 'float32', fp16: 'float16', bf16: 'bfloat16' };

/**
 * Writes a random-weight LLaVA-1.5 checkpoint into `dir` (created if missing) and describes it.
 * Same options -> byte-identical files; `layout` and `shards` change names and files, not values.
 */
export async function makeSyntheticCheckpoint(dir: string, opts: SyntheticCheckpointOptions = {}): Promise<SyntheticCheckpoint> {
  const shape = resolveShape(opts);
  if (shape.imageSize % shape.patchSize !== 0) throw new CheckpointShapeError('image size must be a multiple of patch size');
  if (shape.hidden % shape.heads !== 0 || shape.heads % shape.kvHeads !== 0)
    throw new CheckpointShapeError('hidden must be a multiple of heads, and heads a multiple of KV heads');
  const seed = opts.seed ?? 1;
  const dtype = opts.dtype ?? 'fp32';
  const strategy = opts.selectStrategy ?? 'default';

  const tokenizer = buildSyntheticTokenizer();
  const vocabSize = opts.vocabSize ?? presetVocab(opts.preset) ?? tokenizer.size;
  if (vocabSize < tokenizer.size) throw new CheckpointShapeError(`vocab size must be at least the tokenizer's ${tokenizer.size} tokens`);
  const next = opts.gridPinpoints !== undefined;
  const textModel = opts.textModel ?? 'llama';
  const config = {
    architectures: [next ? 'LlavaNextForConditionalGeneration' : 'LlavaForConditionalGeneration'],
    model_type: next ? 'llava_next' : 'llava',
    ...(next ? { image_grid_pinpoints: opts.gridPinpoints } : {}),
    ignore_index: -100,
    image_token_index: tokenizer.imageId,
    pad_token_id: tokenizer.padId,
    projector_hidden_act: 'gelu',
    vision_feature_layer: opts.visionFeatureLayer ?? -2,
    vision_feature_select_strategy: strategy,
    tie_word_embeddings: opts.tieWordEmbeddings ?? false,
    torch_dtype: TORCH_DTYPE[dtype],
    vocab_size: vocabSize,
    text_config: {
      model_type: textModel,
      architectures: [textModel === 'mistral' ? 'MistralForCausalLM' : 'LlamaForCausalLM'],
      ...(textModel === 'mistral' ? { sliding_window: opts.slidingWindow ?? null } : {}),
      hidden_size: shape.hidden,
      intermediate_size: shape.intermediate,
      num_hidden_layers: shape.layers,
      num_attention_heads: shape.heads,
      num_key_value_heads: shape.kvHeads,
      hidden_act: 'silu',
      rms_norm_eps: opts.rmsNormEps ?? 1e-5,
      rope_theta: opts.ropeTheta ?? 10000,
      rope_scaling: null,
      max_position_embeddings: 4096,
      vocab_size: vocabSize,
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
      pad_token_id: tokenizer.padId,
      torch_dtype: TORCH_DTYPE[dtype],
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: shape.visionHidden,
      intermediate_size: shape.visionIntermediate,
      num_hidden_layers: shape.visionLayers,
      num_attention_heads: shape.visionHeads,
      num_channels: 3,
      image_size: shape.imageSize,
      patch_size: shape.patchSize,
      hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5,
      projection_dim: shape.visionHidden,
    },
  };

  const rename = opts.layout === 'new' ? legacyToUnifiedName : (name: string) => name;
  const tensors = new Map<string, StreamedTensor>();
  for (const [name, init] of weightSpecs(shape, vocabSize, next)) {
    if (opts.tieWordEmbeddings && name === 'language_model.lm_head.weight') continue;
    const count = init.shape.reduce((a, b) => a * b, 1);
    tensors.set(rename(name), {
      dtype: SAFETENSORS_DTYPE[dtype],
      shape: init.shape,
      chunks: () => gaussianChunks(seed, name, count, init),
    });
  }

  mkdirSync(dir, { recursive: true });
  writeJson(join(dir, 'config.json'), config);
  await writeCheckpointWeights(dir, tensors, opts.shards);
  writeJson(join(dir, 'tokenizer.json'), tokenizer.json);
  const chatTemplate = opts.chatTemplate === true ? SYNTHETIC_CHAT_TEMPLATE : opts.chatTemplate || undefined;
  writeJson(join(dir, 'tokenizer_config.json'), {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: SPECIAL_TOKENS.bos,
    eos_token: SPECIAL_TOKENS.eos,
    unk_token: SPECIAL_TOKENS.unk,
    pad_token: SPECIAL_TOKENS.pad,
    legacy: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 4096,
    padding_side: 'left',
    ...(chatTemplate ? { chat_template: chatTemplate } : {}),
  });
  writeJson(join(dir, 'preprocessor_config.json'), {
    image_processor_type: next ? 'LlavaNextImageProcessor' : 'CLIPImageProcessor',
    processor_class: next ? 'LlavaNextProcessor' : 'LlavaProcessor',
    ...(next ? { image_grid_pinpoints: opts.gridPinpoints, do_pad: true } : {}),
    do_resize: true,
    size: { shortest_edge: shape.imageSize },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: shape.imageSize, width: shape.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: OPENAI_CLIP_MEAN,
    image_std: OPENAI_CLIP_STD,
    do_convert_rgb: true,
  });
  writeJson(join(dir, 'generation_config.json'), {
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  });

  const grid = shape.imageSize / shape.patchSize;
  return {
    dir,
    shape,
    config,
    vocabSize,
    numVisualTokens: grid * grid + (strategy === 'full' ? 1 : 0),
    tokens: { bos: tokenizer.bosId, eos: tokenizer.eosId, image: tokenizer.imageId, pad: tokenizer.padId },
  };
}
