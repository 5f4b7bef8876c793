// Independent float64 reference of LLaVA-1.5 (CLIP ViT -> MLP projector -> Llama or Mistral), read straight
// from a Hugging Face checkpoint folder. It imports nothing from src/engine: parity tests compare
// the ONNX engine against this file. Written to be read next to HF's modeling_clip.py,
// modeling_llava.py and modeling_llama.py (or llama2.c's run.c), not to be fast.
//
// API (all layer indices 0-based here; the pruned reference in reference-pruned.ts takes 1-based
// layer numbers like src/shared/pruning.ts):
//   loadReferenceModel(dir)                          config + all weights in float64 (any layout, sharded or not, fp32/fp16/bf16)
//   referenceVision(model, pixelValues)              CLIP hidden states, selected features [N, Dv], projected visual tokens [N, D]
//   referencePrefill(model, { inputIds, pixelValues }) embeds, hiddenStates[0..L], side outputs per layer, KV caches, logits [S, V]
//   referenceGenerate(model, { ..., maxNewTokens })  greedy tokens by full recomputation (no KV cache), with each step's logits
//   referenceDecoderLayer(model, l, x, positions, past) one layer on new tokens after a cache: out, present, side outputs
//   referenceProbe(model, l, hidden, positions, queryStart) layer l's norm + q/k + RoPE attention, mean over heads then queries
//   referenceHead / referenceEmbed / referenceEmbedPrompt   the pieces, for tests that run layers by hand
// inputIds contain at most one image_token_index placeholder; it is replaced by the N visual tokens.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpointWeights, type Tensor64 } from './safetensors.js';
import { isNewLayout, toNewLayoutName } from './weight-names.js';
import {
  ACTIVATIONS,
  add,
  attendValues,
  attentionProbs,
  concatRows,
  dot,
  gatherRows,
  layerNorm,
  linear,
  map,
  multiply,
  norm,
  rmsNorm,
  row,
  ropeRows,
  silu,
  zeros,
  type Mat,
} from './reference-math.js';

export type { Mat } from './reference-math.js';

// ---- model ----

export interface ReferenceModel {
  text: {
    hidden: number;
    intermediate: number;
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    rmsNormEps: number;
    ropeTheta: number;
    vocabSize: number;
    /** Mistral's sliding window: a query sees at most this many keys, itself included; absent or null = all before it. */
    slidingWindow?: number | null;
  };
  vision: {
    hidden: number;
    layers: number;
    heads: number;
    imageSize: number;
    patchSize: number;
    layerNormEps: number;
    activation: (x: number) => number;
  };
  imageTokenIndex: number;
  /** vision_feature_layer: an index into CLIP's hidden states (0 = embeddings), negative from the end; a list concatenates. */
  featureLayers: number[];
  selectStrategy: 'default' | 'full';
  projectorActivation: (x: number) => number;
  /** LLaVA-NeXT (model_type llava_next): the AnyRes resolutions, [height, width]; absent or null for LLaVA-1.5. */
  gridPinpoints?: [number, number][] | null;
  /** A weight by its legacy llava-hf name, whatever layout the checkpoint uses. */
  weight(legacyName: string): Tensor64;
}

// biome-ignore lint/suspicious/noExplicitAny: config.json as transformers writes it; the reference reads the fields it needs by name
type Json = Record<string, any>;

/** LlavaNextConfig's default image_grid_pinpoints. */
const DEFAULT_PINPOINTS: [number, number][] = [
  [336, 672],
  [672, 336],
  [672, 672],
  [1008, 336],
  [336, 1008],
];

/** Whether query i (after `past` cached keys) may see key j: causal, and within the sliding window if any. */
function visible(model: ReferenceModel, past: number): (i: number, j: number) => boolean {
  const window = model.text.slidingWindow ?? null;
  return (i, j) => j <= past + i && (window === null || j > past + i - window);
}

function activation(name: string): (x: number) => number {
  const f = ACTIVATIONS[name];
  if (!f) throw new Error(`reference: unsupported activation ${name}`);
  return f;
}

/** Loads config.json and all safetensors weights (single file or sharded) into float64. */
export function loadReferenceModel(dir: string): ReferenceModel {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Json;
  if (config.model_type !== 'llava' && config.model_type !== 'llava_next')
    throw new Error(`reference: model_type ${config.model_type} is neither llava nor llava_next`);
  const tc: Json = config.text_config ?? {};
  const mistral = tc.model_type === 'mistral';
  const vc: Json = config.vision_config ?? {};
  if (tc.rope_scaling) throw new Error('reference: rope_scaling is not supported');
  // Defaults are those of transformers' LlamaConfig / CLIPVisionConfig, for configs that omit them.
  const hidden = tc.hidden_size ?? 4096;
  const heads = tc.num_attention_heads ?? 32;
  const weights = readCheckpointWeights(dir);
  const newLayout = isNewLayout(weights.keys());
  const tied = config.tie_word_embeddings ?? tc.tie_word_embeddings ?? false;
  const weight = (legacy: string): Tensor64 => {
    // Tied embeddings: the output projection is the token embedding matrix.
    const resolved = tied && legacy === 'language_model.lm_head.weight' ? 'language_model.model.embed_tokens.weight' : legacy;
    const name = newLayout ? toNewLayoutName(resolved) : resolved;
    // transformers 5 saves CLIP without the vision_model level.
    const t = weights.get(name) ?? weights.get(name.replace('vision_tower.vision_model.', 'vision_tower.'));
    if (!t) throw new Error(`reference: missing weight ${name}`);
    return t;
  };
  const featureLayer = config.vision_feature_layer ?? -2;
  return {
    text: {
      hidden,
      heads,
      intermediate: tc.intermediate_size ?? 11008,
      layers: tc.num_hidden_layers ?? 32,
      kvHeads: tc.num_key_value_heads ?? heads,
      headDim: tc.head_dim ?? hidden / heads,
      rmsNormEps: tc.rms_norm_eps ?? 1e-6,
      ropeTheta: tc.rope_parameters?.rope_theta ?? tc.rope_theta ?? 10000,
      vocabSize: weight('language_model.lm_head.weight').shape[0],
      // MistralConfig's default window is 4096; LlamaConfig has none.
      slidingWindow: mistral ? (tc.sliding_window === undefined ? 4096 : tc.sliding_window) : null,
    },
    vision: {
      hidden: vc.hidden_size ?? 768,
      layers: vc.num_hidden_layers ?? 12,
      heads: vc.num_attention_heads ?? 12,
      imageSize: vc.image_size ?? 224,
      patchSize: vc.patch_size ?? 32,
      layerNormEps: vc.layer_norm_eps ?? 1e-5,
      activation: activation(vc.hidden_act ?? 'quick_gelu'),
    },
    imageTokenIndex: config.image_token_index ?? 32000,
    featureLayers: Array.isArray(featureLayer) ? featureLayer : [featureLayer],
    selectStrategy: config.vision_feature_select_strategy ?? 'default',
    projectorActivation: activation(config.projector_hidden_act ?? 'gelu'),
    gridPinpoints: config.model_type === 'llava_next' ? (config.image_grid_pinpoints ?? DEFAULT_PINPOINTS) : null,
    weight,
  };
}

// ---- vision tower + projector ----

export interface VisionResult {
  /** CLIP hidden states: [0] = pre-layernormed embeddings, [i] = output of encoder layer i; each [1+P, Dv]. */
  hiddenStates: Mat[];
  /** The selected layer(s) with CLS dropped per the strategy: [N, Dv]. */
  visionFeatures: Mat;
  /** After the projector: [N, D]; these are the visual tokens. */
  imageFeatures: Mat;
}

/** Patch convolution (stride = kernel = patch, no bias), class token, position embeddings. */
function clipEmbeddings(model: ReferenceModel, pixels: ArrayLike<number>): Mat {
  const { hidden, imageSize, patchSize } = model.vision;
  const grid = imageSize / patchSize;
  const w = model.weight('vision_tower.vision_model.embeddings.patch_embedding.weight'); // [Dv, 3, p, p]
  const cls = model.weight('vision_tower.vision_model.embeddings.class_embedding');
  const pos = model.weight('vision_tower.vision_model.embeddings.position_embedding.weight');
  const x = zeros(1 + grid * grid, hidden);
  x.data.set(cls.data, 0);
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const target = row(x, 1 + gy * grid + gx); // raster order
      for (let o = 0; o < hidden; o++) {
        let sum = 0;
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < patchSize; ky++) {
            for (let kx = 0; kx < patchSize; kx++) {
              const pixel = pixels[(c * imageSize + gy * patchSize + ky) * imageSize + gx * patchSize + kx];
              sum += pixel * w.data[((o * 3 + c) * patchSize + ky) * patchSize + kx];
            }
          }
        }
        target[o] = sum;
      }
    }
  }
  for (let i = 0; i < x.data.length; i++) x.data[i] += pos.data[i];
  return x;
}

function clipLayer(model: ReferenceModel, i: number, x: Mat): Mat {
  const p = `vision_tower.vision_model.encoder.layers.${i}`;
  const w = (name: string) => model.weight(`${p}.${name}`);
  const { heads, layerNormEps } = model.vision;
  const h = layerNorm(x, w('layer_norm1.weight'), w('layer_norm1.bias'), layerNormEps);
  const q = linear(h, w('self_attn.q_proj.weight'), w('self_attn.q_proj.bias'));
  const k = linear(h, w('self_attn.k_proj.weight'), w('self_attn.k_proj.bias'));
  const v = linear(h, w('self_attn.v_proj.weight'), w('self_attn.v_proj.bias'));
  const probs = attentionProbs(q, k, heads, heads, () => true); // bidirectional
  const attn = linear(attendValues(probs, v, x.rows, heads, heads), w('self_attn.out_proj.weight'), w('self_attn.out_proj.bias'));
  const mid = add(x, attn);
  const h2 = layerNorm(mid, w('layer_norm2.weight'), w('layer_norm2.bias'), layerNormEps);
  const mlp = linear(
    map(linear(h2, w('mlp.fc1.weight'), w('mlp.fc1.bias')), model.vision.activation),
    w('mlp.fc2.weight'),
    w('mlp.fc2.bias'),
  );
  return add(mid, mlp);
}

function concatColumns(parts: Mat[]): Mat {
  const cols = parts.reduce((n, p) => n + p.cols, 0);
  const out = zeros(parts[0].rows, cols);
  for (let t = 0; t < out.rows; t++) {
    let offset = 0;
    for (const p of parts) {
      out.data.set(row(p, t), t * cols + offset);
      offset += p.cols;
    }
  }
  return out;
}

/** CLIP vision tower, feature selection and the projector for one image ([3, H, W] normalized pixels, CHW). */
export function referenceVision(model: ReferenceModel, pixelValues: ArrayLike<number>): VisionResult {
  const embed = clipEmbeddings(model, pixelValues);
  let x = layerNorm(
    embed,
    model.weight('vision_tower.vision_model.pre_layrnorm.weight'),
    model.weight('vision_tower.vision_model.pre_layrnorm.bias'),
    model.vision.layerNormEps,
  );
  const hiddenStates = [x];
  for (let i = 0; i < model.vision.layers; i++) {
    x = clipLayer(model, i, x);
    hiddenStates.push(x);
  }
  const selected = model.featureLayers.map((l) => hiddenStates[l < 0 ? hiddenStates.length + l : l]);
  let visionFeatures = concatColumns(selected);
  if (model.selectStrategy === 'default') visionFeatures = gatherRows(visionFeatures, range(1, visionFeatures.rows));
  const h = map(
    linear(visionFeatures, model.weight('multi_modal_projector.linear_1.weight'), model.weight('multi_modal_projector.linear_1.bias')),
    model.projectorActivation,
  );
  const imageFeatures = linear(
    h,
    model.weight('multi_modal_projector.linear_2.weight'),
    model.weight('multi_modal_projector.linear_2.bias'),
  );
  return { hiddenStates, visionFeatures, imageFeatures };
}

// ---- Llama decoder ----

/** Per-token side outputs of one layer (method spec §1): norm ratio and cosine of module output vs RMSNorm-ed input. */
export interface SideOutputs64 {
  attnRatio: Float64Array;
  attnCos: Float64Array;
  mlpRatio: Float64Array;
  mlpCos: Float64Array;
}

/** One layer's KV cache: keys after RoPE, values; [T, kvHeads*headDim]. */
export interface LayerCache {
  keys: Mat;
  values: Mat;
}

function ratioAndCosine(input: Mat, output: Mat): { ratio: Float64Array; cos: Float64Array } {
  const ratio = new Float64Array(input.rows);
  const cos = new Float64Array(input.rows);
  for (let t = 0; t < input.rows; t++) {
    const a = row(input, t);
    const b = row(output, t);
    ratio[t] = norm(b) / norm(a);
    cos[t] = dot(a, b) / (norm(a) * norm(b));
  }
  return { ratio, cos };
}

function layerWeight(model: ReferenceModel, layer: number, name: string): Tensor64 {
  return model.weight(`language_model.model.layers.${layer}.${name}`);
}

/** input_layernorm, q/k projections and RoPE of `layer` over `hidden`: what both the layer and the IGA probe start with. */
function queriesAndKeys(model: ReferenceModel, layer: number, hidden: Mat, positions: ArrayLike<number>) {
  const { heads, kvHeads, rmsNormEps, ropeTheta } = model.text;
  const normed = rmsNorm(hidden, layerWeight(model, layer, 'input_layernorm.weight'), rmsNormEps);
  const q = ropeRows(linear(normed, layerWeight(model, layer, 'self_attn.q_proj.weight')), heads, positions, ropeTheta);
  const k = ropeRows(linear(normed, layerWeight(model, layer, 'self_attn.k_proj.weight')), kvHeads, positions, ropeTheta);
  return { normed, q, k };
}

export interface LayerResult {
  out: Mat;
  present: LayerCache;
  side: SideOutputs64;
}

/**
 * One Llama decoder layer on S new tokens at `positions`, after `past` cached tokens (null = none).
 * Query i sees keys j <= past + i (causal). Returns the output, the extended cache and side outputs.
 */
export function referenceDecoderLayer(
  model: ReferenceModel,
  layer: number,
  x: Mat,
  positions: ArrayLike<number>,
  past: LayerCache | null,
): LayerResult {
  const { heads, kvHeads, rmsNormEps } = model.text;
  const w = (name: string) => layerWeight(model, layer, name);
  const { normed: aIn, q, k } = queriesAndKeys(model, layer, x, positions);
  const v = linear(aIn, w('self_attn.v_proj.weight'));
  const keys = past ? concatRows([past.keys, k]) : k;
  const values = past ? concatRows([past.values, v]) : v;
  const pastLength = past ? past.keys.rows : 0;
  const probs = attentionProbs(q, keys, heads, kvHeads, visible(model, pastLength));
  const aOut = linear(attendValues(probs, values, x.rows, heads, kvHeads), w('self_attn.o_proj.weight'));
  const h = add(x, aOut);
  const fIn = rmsNorm(h, w('post_attention_layernorm.weight'), rmsNormEps);
  const gate = map(linear(fIn, w('mlp.gate_proj.weight')), silu);
  const fOut = linear(multiply(gate, linear(fIn, w('mlp.up_proj.weight'))), w('mlp.down_proj.weight'));
  const attn = ratioAndCosine(aIn, aOut);
  const mlp = ratioAndCosine(fIn, fOut);
  return {
    out: add(h, fOut),
    present: { keys, values },
    side: { attnRatio: attn.ratio, attnCos: attn.cos, mlpRatio: mlp.ratio, mlpCos: mlp.cos },
  };
}

/**
 * The IGA / FastV probe (architecture.md `probe_NN`): layer `layer`'s input_layernorm + q/k + RoPE over
 * `hidden` at `positions`, softmax over all keys with the causal mask, mean over heads, then mean over
 * the queries queryStart..S-1. Returns the attention each key receives, length S.
 */
export function referenceProbe(
  model: ReferenceModel,
  layer: number,
  hidden: Mat,
  positions: ArrayLike<number>,
  queryStart: number,
): Float64Array {
  const { heads, kvHeads } = model.text;
  const { q, k } = queriesAndKeys(model, layer, hidden, positions);
  const queries = gatherRows(q, range(queryStart, hidden.rows));
  const probs = attentionProbs(queries, k, heads, kvHeads, visible(model, queryStart));
  const S = hidden.rows;
  const out = new Float64Array(S);
  const weight = 1 / (heads * queries.rows);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < queries.rows; i++) {
      for (let j = 0; j < S; j++) out[j] += probs[(h * queries.rows + i) * S + j] * weight;
    }
  }
  return out;
}

/** Final RMSNorm + lm_head over every row: logits [rows, V]. */
export function referenceHead(model: ReferenceModel, hidden: Mat): Mat {
  const normed = rmsNorm(hidden, model.weight('language_model.model.norm.weight'), model.text.rmsNormEps);
  return linear(normed, model.weight('language_model.lm_head.weight'));
}

export function referenceEmbed(model: ReferenceModel, ids: ArrayLike<number>): Mat {
  const table = model.weight('language_model.model.embed_tokens.weight');
  const D = model.text.hidden;
  const out = zeros(ids.length, D);
  for (let t = 0; t < ids.length; t++) out.data.set(table.data.subarray(ids[t] * D, (ids[t] + 1) * D), t * D);
  return out;
}

// ---- prompt assembly ----

export interface PromptInput {
  /** Token ids with at most one image_token_index placeholder (BOS included if wanted). */
  inputIds: ArrayLike<number>;
  /** Normalized pixels [3, H, W] (CHW) for the image; required when inputIds has the placeholder, unless visualTokens is given. */
  pixelValues?: ArrayLike<number>;
  /** The visual tokens themselves [N, D] (LLaVA-NeXT's packed views, reference-next.ts), instead of pixelValues. */
  visualTokens?: Mat;
}

export interface PromptEmbeddings {
  embeds: Mat; // [S, D]: text before, N visual tokens, text after
  visualStart: number;
  visualCount: number;
  vision?: VisionResult;
}

/** Text embeddings with the single <image> placeholder replaced by the N projected visual tokens. */
export function referenceEmbedPrompt(model: ReferenceModel, input: PromptInput, vision?: VisionResult): PromptEmbeddings {
  const ids = Array.from(input.inputIds);
  const at = ids.indexOf(model.imageTokenIndex);
  if (at < 0) return { embeds: referenceEmbed(model, ids), visualStart: ids.length, visualCount: 0 };
  if (ids.indexOf(model.imageTokenIndex, at + 1) >= 0) throw new Error('reference: more than one <image> placeholder');
  if (!vision && !input.visualTokens) {
    if (!input.pixelValues) throw new Error('reference: prompt has <image> but no pixelValues');
    vision = referenceVision(model, input.pixelValues);
  }
  const visual = input.visualTokens ?? vision!.imageFeatures;
  const embeds = concatRows([referenceEmbed(model, ids.slice(0, at)), visual, referenceEmbed(model, ids.slice(at + 1))]);
  return { embeds, visualStart: at, visualCount: visual.rows, vision };
}

// ---- whole forward ----

export interface PrefillResult extends PromptEmbeddings {
  /** [0] = embeddings, [l+1] = output of decoder layer l (0-based); each [S, D]. */
  hiddenStates: Mat[];
  /** Side outputs of each decoder layer, each [S]. */
  side: SideOutputs64[];
  /** KV cache of each layer after the prefill. */
  caches: LayerCache[];
  /** [S, V] */
  logits: Mat;
}

/** The unpruned LLaVA forward over the whole prompt at positions 0..S-1. */
export function referencePrefill(model: ReferenceModel, input: PromptInput, vision?: VisionResult): PrefillResult {
  const prompt = referenceEmbedPrompt(model, input, vision);
  const positions = range(0, prompt.embeds.rows);
  const hiddenStates = [prompt.embeds];
  const side: SideOutputs64[] = [];
  const caches: LayerCache[] = [];
  let x = prompt.embeds;
  for (let l = 0; l < model.text.layers; l++) {
    const r = referenceDecoderLayer(model, l, x, positions, null);
    x = r.out;
    hiddenStates.push(x);
    side.push(r.side);
    caches.push(r.present);
  }
  return { ...prompt, hiddenStates, side, caches, logits: referenceHead(model, x) };
}

export interface GenerateOptions extends PromptInput {
  maxNewTokens: number;
  /** Stop after emitting this id (it is included in the result). */
  eosTokenId?: number;
}

export interface GenerateResult {
  tokens: number[];
  /** Logits [V] that chose each token. */
  stepLogits: Float64Array[];
}

/** Index of the largest value; ties go to the lowest index (as torch.argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Greedy decoding by full recomputation: every step reruns the whole prompt + answer so far (no KV cache). */
export function referenceGenerate(model: ReferenceModel, opts: GenerateOptions): GenerateResult {
  const ids = Array.from(opts.inputIds);
  const hasImage = ids.includes(model.imageTokenIndex);
  const vision = hasImage && opts.pixelValues ? referenceVision(model, opts.pixelValues) : undefined;
  const tokens: number[] = [];
  const stepLogits: Float64Array[] = [];
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const { logits } = referencePrefill(model, { inputIds: [...ids, ...tokens], visualTokens: opts.visualTokens }, vision);
    const last = row(logits, logits.rows - 1).slice();
    const next = argmax(last);
    tokens.push(next);
    stepLogits.push(last);
    if (next === opts.eosTokenId) break;
  }
  return { tokens, stepLogits };
}

export function range(start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i);
}
