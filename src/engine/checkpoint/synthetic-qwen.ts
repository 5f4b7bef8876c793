// Writes a real Hugging Face Qwen2.5-VL checkpoint folder with seeded random weights, as synthetic.ts does for
// LLaVA: config.json (transformers 5's nested layout), safetensors in the Hub's names, a byte-level tokenizer with
// Qwen's special tokens, its chat template, preprocessor_config.json and generation_config.json. The tensors are
// exactly those the importer expects (expectedQwenTensors), made and written a chunk at a time.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../image/preprocess.js';
import type { StreamedTensor } from '../io/safetensors.js';
import { parseQwenConfig, type QwenVLConfig } from '../model/qwen-config.js';
import { expectedQwenTensors, hubQwenNames } from '../model/qwen-weights.js';
import {
  gaussianChunks,
  SAFETENSORS_DTYPE,
  TORCH_DTYPE,
  writeCheckpointWeights,
  writeJson,
  type CheckpointDtype,
  type Init,
} from './synthetic.js';

interface QwenShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  mropeSection: [number, number, number];
  visionDepth: number;
  visionHidden: number;
  visionIntermediate: number;
  visionHeads: number;
  windowSize: number;
  fullAttBlocks: number[];
  vocabSize: number;
  tied: boolean;
  maxPixels: number;
}

export const QWEN_CHECKPOINT_PRESETS: Record<'tiny-qwen' | 'qwen2.5-vl-7b', QwenShape> = {
  /** 4 layers of 64, a 2-block ViT of 32 with 56 px windows: seconds to make and import. */
  'tiny-qwen': {
    hidden: 64,
    intermediate: 128,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    mropeSection: [2, 3, 3],
    visionDepth: 2,
    visionHidden: 32,
    visionIntermediate: 48,
    visionHeads: 2,
    windowSize: 56,
    fullAttBlocks: [1],
    vocabSize: 512,
    tied: false,
    maxPixels: 64 * 28 * 28,
  },
  /** Qwen/Qwen2.5-VL-7B-Instruct's shapes (config.json and preprocessor_config.json as published). */
  'qwen2.5-vl-7b': {
    hidden: 3584,
    intermediate: 18944,
    layers: 28,
    heads: 28,
    kvHeads: 4,
    mropeSection: [16, 24, 24],
    visionDepth: 32,
    visionHidden: 1280,
    visionIntermediate: 3420,
    visionHeads: 16,
    windowSize: 112,
    fullAttBlocks: [7, 15, 23, 31],
    vocabSize: 152064,
    tied: false,
    maxPixels: 12845056,
  },
};
export type QwenCheckpointPreset = keyof typeof QWEN_CHECKPOINT_PRESETS;

export function isQwenPreset(name: string): name is QwenCheckpointPreset {
  return name in QWEN_CHECKPOINT_PRESETS;
}

/** Qwen's special tokens, after the 256 byte tokens. */
const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>', '<|image_pad|>', '<|video_pad|>'];
const id = (token: string) => 256 + SPECIALS.indexOf(token);

/** Qwen2.5-VL-Instruct's chat template (the checkpoints' chat_template.json), images and text in content lists. */
export const QWEN_CHAT_TEMPLATE =
  "{% set image_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}" +
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}' +
  "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}" +
  "{% for content in message['content'] %}{% if content['type'] == 'image' %}{% set image_count.value = image_count.value + 1 %}" +
  "<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n" +
  '{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

/** The checkpoint's config.json, as transformers 5 writes it. */
export function qwenConfigJson(s: QwenShape, dtype: CheckpointDtype = 'fp32'): Record<string, unknown> {
  return {
    architectures: ['Qwen2_5_VLForConditionalGeneration'],
    model_type: 'qwen2_5_vl',
    image_token_id: id('<|image_pad|>'),
    video_token_id: id('<|video_pad|>'),
    vision_start_token_id: id('<|vision_start|>'),
    vision_end_token_id: id('<|vision_end|>'),
    tie_word_embeddings: s.tied,
    torch_dtype: TORCH_DTYPE[dtype],
    text_config: {
      model_type: 'qwen2_5_vl_text',
      hidden_size: s.hidden,
      intermediate_size: s.intermediate,
      num_hidden_layers: s.layers,
      num_attention_heads: s.heads,
      num_key_value_heads: s.kvHeads,
      hidden_act: 'silu',
      rms_norm_eps: 1e-6,
      max_position_embeddings: 128000,
      rope_parameters: { rope_type: 'default', rope_theta: 1e6, mrope_section: s.mropeSection },
      use_sliding_window: false,
      vocab_size: s.vocabSize,
      bos_token_id: id('<|endoftext|>'),
      eos_token_id: id('<|im_end|>'),
      tie_word_embeddings: s.tied,
    },
    vision_config: {
      model_type: 'qwen2_5_vl_vision',
      depth: s.visionDepth,
      hidden_size: s.visionHidden,
      intermediate_size: s.visionIntermediate,
      num_heads: s.visionHeads,
      in_channels: 3,
      patch_size: 14,
      spatial_merge_size: 2,
      temporal_patch_size: 2,
      window_size: s.windowSize,
      fullatt_block_indexes: s.fullAttBlocks,
      out_hidden_size: s.hidden,
      hidden_act: 'silu',
      tokens_per_second: 2,
    },
  };
}

/** Writes a random-weight Qwen2.5-VL checkpoint of the preset's shape into `dir`. Same options -> same files. */
export async function makeSyntheticQwenCheckpoint(
  dir: string,
  opts: { preset: QwenCheckpointPreset; dtype?: CheckpointDtype; seed?: number; shards?: number },
): Promise<{ dir: string; config: QwenVLConfig }> {
  const shape = QWEN_CHECKPOINT_PRESETS[opts.preset];
  const dtype = opts.dtype ?? 'fp32';
  const seed = opts.seed ?? 1;
  const configJson = qwenConfigJson(shape, dtype);
  const config = parseQwenConfig(JSON.stringify(configJson));
  const tensors = new Map<string, StreamedTensor>();
  for (const { name, shape: dims } of expectedQwenTensors(config, hubQwenNames(shape.tied))) {
    const init = initOf(name, dims, shape.hidden);
    const count = dims.reduce((a, b) => a * b, 1);
    tensors.set(name, { dtype: SAFETENSORS_DTYPE[dtype], shape: dims, chunks: () => gaussianChunks(seed, name, count, init) });
  }
  mkdirSync(dir, { recursive: true });
  writeJson(join(dir, 'config.json'), configJson);
  await writeCheckpointWeights(dir, tensors, opts.shards);
  writeJson(join(dir, 'tokenizer.json'), byteLevelTokenizer());
  writeJson(join(dir, 'tokenizer_config.json'), {
    tokenizer_class: 'Qwen2Tokenizer',
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    model_max_length: 131072,
  });
  writeFileSync(join(dir, 'chat_template.jinja'), QWEN_CHAT_TEMPLATE);
  writeJson(join(dir, 'preprocessor_config.json'), {
    image_processor_type: 'Qwen2VLImageProcessor',
    min_pixels: 56 * 56,
    max_pixels: shape.maxPixels,
    patch_size: 14,
    temporal_patch_size: 2,
    merge_size: 2,
    image_mean: OPENAI_CLIP_MEAN,
    image_std: OPENAI_CLIP_STD,
  });
  writeJson(join(dir, 'generation_config.json'), {
    bos_token_id: id('<|endoftext|>'),
    eos_token_id: [id('<|im_end|>'), id('<|endoftext|>')],
  });
  return { dir, config };
}

/** Linear weights 1/sqrt(fan_in) so activations stay O(1); norm gains around 1; small biases; a wider lm_head. */
function initOf(name: string, dims: number[], hidden: number): Init {
  if (name.endsWith('norm.weight') || name.includes('norm1') || name.includes('norm2') || name.includes('ln_q'))
    return { shape: dims, mean: 1, std: 0.2 };
  if (name.endsWith('.bias')) return { shape: dims, mean: 0, std: 0.1 };
  if (name.endsWith('embed_tokens.weight')) return { shape: dims, mean: 0, std: 1 };
  if (name === 'lm_head.weight') return { shape: dims, mean: 0, std: 3 / Math.sqrt(hidden) };
  const fanIn = dims.slice(1).reduce((a, b) => a * b, 1);
  return { shape: dims, mean: 0, std: 1 / Math.sqrt(fanIn) };
}

/** A byte-level BPE tokenizer (GPT-2's byte alphabet, no merges) with Qwen's special tokens after the 256 bytes. */
function byteLevelTokenizer(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteAlphabet().forEach((ch, b) => {
    vocab[ch] = b;
  });
  const added = SPECIALS.map((content) => ({
    id: id(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for code points from 256 up. */
function byteAlphabet(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : 256 + extra++));
}
