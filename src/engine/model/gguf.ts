// llama.cpp's GGUF layout of a LLaVA, mapped onto the engine's Hugging Face view of it:
// - the language model (`general.architecture` llama): llama.* metadata -> TextConfig, `blk.N.attn_q` ... ->
//   `model.language_model.layers.N.self_attn.q_proj` ..., with the q/k rows llama.cpp's converter permuted for
//   its RoPE layout put back (convert_hf_to_gguf.py LlamaModel.permute);
// - the vision projector (`mmproj`, `general.architecture` clip, clip.projector_type mlp): clip.vision.* ->
//   VisionConfig, `v.blk.N.*` / `mm.0` / `mm.2` -> the CLIP tower and projector names
//   (tools/mtmd/clip-impl.h, convert_image_encoder_to_gguf.py).

import type { GgufMetadata } from '../io/gguf.js';
import type { TextConfig, VisionConfig } from './config.js';
import { ConfigError } from './config.js';

export const GGUF_SUPPORTED =
  "a GGUF with general.architecture 'llama' (Llama, Vicuna, Mistral as llama, SmolLM2), plain RoPE, and optionally an mmproj " +
  "GGUF with clip.projector_type 'mlp' (LLaVA-1.5, or LLaVA-NeXT where it carries image_grid_pinpoints)";

function reject(path: string, what: string): never {
  throw new ConfigError(`${path}: unsupported ${what}; supported: ${GGUF_SUPPORTED}`);
}

/** TextConfig of a llama-architecture GGUF. `vocabRows` and `tied` come from the token embedding and output tensors. */
export function ggufTextConfig(path: string, meta: GgufMetadata, vocabRows: number, tied: boolean): TextConfig {
  const arch = meta.string('general.architecture');
  if (arch !== 'llama') reject(path, `general.architecture '${arch}'`);
  const k = (key: string) => `llama.${key}`;
  const scaling = meta.string(k('rope.scaling.type'), null);
  if (scaling !== null && scaling !== 'none') reject(path, `llama.rope.scaling.type '${scaling}'`);
  if ((meta.number(k('expert_count'), 0) ?? 0) > 0) reject(path, 'mixture of experts (llama.expert_count)');

  const hiddenSize = meta.count(k('embedding_length'));
  const numHeads = meta.count(k('attention.head_count'));
  const numKvHeads = meta.count(k('attention.head_count_kv'), numHeads);
  const headDim = meta.count(k('attention.key_length'), hiddenSize / numHeads);
  const ensure = (ok: boolean, what: string) => {
    if (!ok) throw new ConfigError(`${path}: ${what}`);
  };
  ensure(Number.isInteger(headDim) && headDim % 2 === 0, `head size ${headDim} must be an even integer for RoPE`);
  ensure(numHeads % numKvHeads === 0, `head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  const ropeDims = meta.number(k('rope.dimension_count'), headDim);
  if (ropeDims !== headDim) reject(path, `partial RoPE (llama.rope.dimension_count ${ropeDims} of a head size ${headDim})`);
  return {
    hiddenSize,
    numLayers: meta.count(k('block_count')),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: meta.count(k('feed_forward_length')),
    rmsNormEps: meta.number(k('attention.layer_norm_rms_epsilon')),
    ropeTheta: meta.number(k('rope.freq_base'), 10000) ?? 10000,
    vocabSize: vocabRows,
    maxPositionEmbeddings: meta.count(k('context_length'), 2048),
    tieWordEmbeddings: tied,
  };
}

export interface GgufVision {
  vision: VisionConfig;
  /** Index into CLIP's hidden states whose output feeds the projector (the blocks the file keeps). */
  featureLayer: number;
  gridPinpoints?: [number, number][];
  imageMean: number[];
  imageStd: number[];
}

/** VisionConfig of a LLaVA mmproj GGUF. `blocks` is how many `v.blk.N` layers the file holds. */
export function ggufVisionConfig(path: string, meta: GgufMetadata, blocks: number): GgufVision {
  const arch = meta.string('general.architecture', 'clip');
  if (arch !== 'clip') reject(path, `mmproj general.architecture '${arch}'`);
  if (meta.boolean('clip.has_vision_encoder', true) === false) reject(path, 'mmproj without a vision encoder');
  const projector = meta.string('clip.projector_type', 'mlp');
  if (projector !== 'mlp') reject(path, `clip.projector_type '${projector}'`);
  if (meta.boolean('clip.use_gelu', false)) reject(path, 'a CLIP tower with gelu (clip.use_gelu true; LLaVA uses quick_gelu)');
  const v = (key: string) => `clip.vision.${key}`;
  const hiddenSize = meta.count(v('embedding_length'));
  const numHeads = meta.count(v('attention.head_count'));
  const imageSize = meta.count(v('image_size'));
  const patchSize = meta.count(v('patch_size'));
  if (hiddenSize % numHeads !== 0) throw new ConfigError(`${path}: vision width ${hiddenSize} is not divisible by ${numHeads} heads`);
  if (imageSize % patchSize !== 0) throw new ConfigError(`${path}: image size ${imageSize} is not a multiple of patch ${patchSize}`);
  // The converter keeps the blocks up to the feature layer (dropping the last one unless told otherwise):
  // the output of the last kept block is the feature, unless clip.vision.feature_layer names it.
  const listed = meta.numbers(v('feature_layer'));
  const featureLayer = listed?.length ? Math.max(...listed) : blocks;
  if (listed && listed.length > 1) reject(path, 'several vision feature layers (clip.vision.feature_layer)');
  if (featureLayer < 1 || featureLayer > blocks)
    throw new ConfigError(`${path}: feature layer ${featureLayer} is out of range for the ${blocks} blocks in the file`);
  const flat = meta.numbers(v('image_grid_pinpoints'));
  const gridPinpoints = flat?.length ? pairs(path, flat, imageSize) : undefined;
  const three = (key: string, fallback: number[]) => {
    const values = meta.numbers(v(key)) ?? fallback;
    if (values.length !== 3) throw new ConfigError(`${path}: clip.vision.${key} must have 3 values`);
    return values;
  };
  return {
    vision: {
      hiddenSize,
      imageSize,
      patchSize,
      numChannels: 3,
      numLayers: blocks,
      numHeads,
      intermediateSize: meta.count(v('feed_forward_length')),
      layerNormEps: meta.number(v('attention.layer_norm_epsilon'), 1e-5) ?? 1e-5,
    },
    featureLayer,
    ...(gridPinpoints ? { gridPinpoints } : {}),
    imageMean: three('image_mean', [0.48145466, 0.4578275, 0.40821073]),
    imageStd: three('image_std', [0.26862954, 0.26130258, 0.27577711]),
  };
}

function pairs(path: string, flat: number[], tile: number): [number, number][] {
  if (flat.length % 2) throw new ConfigError(`${path}: clip.vision.image_grid_pinpoints has an odd number of values`);
  const out: [number, number][] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const [h, w] = [flat[i], flat[i + 1]];
    if (h % tile || w % tile) throw new ConfigError(`${path}: image_grid_pinpoints [${h}, ${w}] is not whole ${tile}-pixel tiles`);
    out.push([h, w]);
  }
  return out;
}

const TEXT_LAYER_NAMES: Record<string, string> = {
  input_layernorm: 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  post_attention_layernorm: 'ffn_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

const VISION_LAYER_NAMES: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.out_proj': 'attn_out',
  layer_norm1: 'ln1',
  layer_norm2: 'ln2',
  'mlp.fc1': 'ffn_up',
  'mlp.fc2': 'ffn_down',
};

/** Where a tensor comes from: the file, its GGUF name, and the RoPE row permutation to undo (its head count). */
export interface GgufSourceTensor {
  file: 'model' | 'mmproj';
  name: string;
  unpermuteHeads?: number;
}

/**
 * The GGUF tensor behind a Hugging Face (transformers >= 4.52 layout) name, or null for a name no GGUF holds.
 * `swapFfn`: the legacy converter wrote CLIP's fc1 as ffn_down and fc2 as ffn_up (clip.cpp swaps them back by shape).
 */
export function ggufSourceOf(hfName: string, text: TextConfig, swapFfn: boolean): GgufSourceTensor | null {
  const model = (name: string, unpermuteHeads?: number): GgufSourceTensor => ({ file: 'model', name, unpermuteHeads });
  const mmproj = (name: string): GgufSourceTensor => ({ file: 'mmproj', name });
  if (hfName === 'model.language_model.embed_tokens.weight') return model('token_embd.weight');
  if (hfName === 'model.language_model.norm.weight') return model('output_norm.weight');
  if (hfName === 'lm_head.weight') return model('output.weight');
  let m = /^model\.language_model\.layers\.(\d+)\.(.+)\.weight$/.exec(hfName);
  if (m && TEXT_LAYER_NAMES[m[2]]) {
    const heads = m[2] === 'self_attn.q_proj' ? text.numHeads : m[2] === 'self_attn.k_proj' ? text.numKvHeads : undefined;
    return model(`blk.${m[1]}.${TEXT_LAYER_NAMES[m[2]]}.weight`, heads);
  }
  const projector = /^model\.multi_modal_projector\.linear_([12])\.(weight|bias)$/.exec(hfName);
  if (projector) return mmproj(`mm.${projector[1] === '1' ? 0 : 2}.${projector[2]}`);
  if (hfName === 'model.image_newline') return mmproj('model.image_newline');
  const vision = /^model\.vision_tower\.vision_model\.(.+)$/.exec(hfName)?.[1];
  if (!vision) return null;
  const fixed: Record<string, string> = {
    'embeddings.patch_embedding.weight': 'v.patch_embd.weight',
    'embeddings.class_embedding': 'v.class_embd',
    'embeddings.position_embedding.weight': 'v.position_embd.weight',
    'pre_layrnorm.weight': 'v.pre_ln.weight',
    'pre_layrnorm.bias': 'v.pre_ln.bias',
  };
  if (fixed[vision]) return mmproj(fixed[vision]);
  m = /^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(vision);
  if (!m || !VISION_LAYER_NAMES[m[2]]) return null;
  let part = VISION_LAYER_NAMES[m[2]];
  if (swapFfn && part.startsWith('ffn_')) part = part === 'ffn_up' ? 'ffn_down' : 'ffn_up';
  return mmproj(`v.blk.${m[1]}.${part}.${m[3]}`);
}

/**
 * Undoes llama.cpp's q/k row permutation: rows (heads, dim/2, 2) in its order back to (heads, 2, dim/2). Rows are
 * moved whole, so it serves float rows and rows of quantized blocks (`cols` then counts their bytes) alike.
 */
export function unpermuteRows<T extends Float32Array | Uint8Array>(data: T, rows: number, cols: number, heads: number): T {
  const half = rows / heads / 2;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let pair = 0; pair < 2; pair++) {
        const from = (h * half * 2 + i * 2 + pair) * cols; // llama.cpp: [h][i][pair]
        const to = (h * 2 * half + pair * half + i) * cols; // HF: [h][pair][i]
        out.set(data.subarray(from, from + cols), to);
      }
  return out;
}
