import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLlavaConfig, numVisualTokens, parameterCount } from '../../src/engine/model/config.js';
import { detectLayout, detectVisionPrefix, WeightNames } from '../../src/engine/model/weights.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { readCheckpointWeights } from '../helpers/safetensors.js';

/** The real llava-hf/llava-1.5-7b-hf config.json (transformers 4.36 era): most vision keys are omitted. */
const LLAVA_15_7B = {
  architectures: ['LlavaForConditionalGeneration'],
  ignore_index: -100,
  image_token_index: 32000,
  model_type: 'llava',
  pad_token_id: 32001,
  projector_hidden_act: 'gelu',
  text_config: {
    _name_or_path: 'lmsys/vicuna-7b-v1.5',
    architectures: ['LlamaForCausalLM'],
    max_position_embeddings: 4096,
    model_type: 'llama',
    rms_norm_eps: 1e-5,
    torch_dtype: 'float16',
    vocab_size: 32064,
  },
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  transformers_version: '4.36.0.dev0',
  vision_config: {
    hidden_size: 1024,
    image_size: 336,
    intermediate_size: 4096,
    model_type: 'clip_vision_model',
    num_attention_heads: 16,
    num_hidden_layers: 24,
    patch_size: 14,
    projection_dim: 768,
    vocab_size: 32000,
  },
  vision_feature_layer: -2,
  vision_feature_select_strategy: 'default',
  vocab_size: 32064,
};

const parse = (value: unknown) => parseLlavaConfig(JSON.stringify(value));
const withText = (extra: Record<string, unknown>) => ({ ...LLAVA_15_7B, text_config: { ...LLAVA_15_7B.text_config, ...extra } });
const withVision = (extra: Record<string, unknown>) => ({ ...LLAVA_15_7B, vision_config: { ...LLAVA_15_7B.vision_config, ...extra } });

describe('parseLlavaConfig', () => {
  it('fills in the Llama and CLIP defaults llava-hf configs omit', () => {
    const c = parse(LLAVA_15_7B);
    expect(c.text).toEqual({
      hiddenSize: 4096,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      headDim: 128,
      intermediateSize: 11008,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      vocabSize: 32064,
      maxPositionEmbeddings: 4096,
      tieWordEmbeddings: false,
    });
    expect(c.vision).toEqual({
      hiddenSize: 1024,
      imageSize: 336,
      patchSize: 14,
      numChannels: 3,
      numLayers: 24,
      numHeads: 16,
      intermediateSize: 4096,
      layerNormEps: 1e-5,
    });
    expect(c.visionFeatureLayer).toBe(23); // -2 indexes [embeddings, layer 1..24]: layer 23's output
    expect(c.visionFeatureSelectStrategy).toBe('default');
    expect(c.imageTokenIndex).toBe(32000);
    expect(c.padTokenId).toBe(32001);
    expect(c.projectorBias).toBe(true);
    expect(numVisualTokens(c)).toBe(576);
  });

  it("uses LlavaConfig's CLIP ViT-L/14-336 tower when vision_config is absent, and LlamaConfig defaults for text", () => {
    const c = parse({ model_type: 'llava' });
    expect(c.vision).toMatchObject({
      hiddenSize: 1024,
      imageSize: 336,
      patchSize: 14,
      numLayers: 24,
      numHeads: 16,
      intermediateSize: 4096,
    });
    expect(c.text).toMatchObject({ hiddenSize: 4096, numLayers: 32, rmsNormEps: 1e-6, vocabSize: 32000, maxPositionEmbeddings: 2048 });
  });

  it('reads GQA, head_dim, explicit layer indices, the full strategy and eos lists', () => {
    const c = parse({
      ...withText({ num_key_value_heads: 8, head_dim: 64, rope_theta: 500000, eos_token_id: [2, 7], bos_token_id: 1 }),
      vision_feature_layer: 5,
      vision_feature_select_strategy: 'full',
    });
    expect(c.text.numKvHeads).toBe(8);
    expect(c.text.headDim).toBe(64);
    expect(c.text.ropeTheta).toBe(500000);
    expect(c.visionFeatureLayer).toBe(5);
    expect(numVisualTokens(c)).toBe(577);
    expect(c.eosTokenId).toBe(2);
    expect(c.bosTokenId).toBe(1);
  });

  it.each([
    [{ ...LLAVA_15_7B, model_type: 'qwen2_vl' }, /unsupported model_type 'qwen2_vl'; supported: model_type 'llava'/],
    [withText({ model_type: 'gemma' }), /unsupported text_config.model_type 'gemma'; supported: .*'llama' or 'mistral'/],
    [{ ...LLAVA_15_7B, image_grid_pinpoints: [[336, 672]] }, /image_grid_pinpoints with model_type 'llava'/],
    [withText({ hidden_act: 'gelu' }), /unsupported text_config.hidden_act 'gelu'/],
    [withText({ attention_bias: true }), /unsupported text_config.attention_bias true/],
    [withText({ mlp_bias: true }), /unsupported text_config.mlp_bias true/],
    [withText({ rope_scaling: { rope_type: 'linear', factor: 2 } }), /unsupported text_config.rope_scaling/],
    [withVision({ hidden_act: 'gelu' }), /unsupported vision_config.hidden_act 'gelu'/],
    [withVision({ model_type: 'siglip_vision_model' }), /unsupported vision_config.model_type 'siglip_vision_model'/],
    [{ ...LLAVA_15_7B, projector_hidden_act: 'relu' }, /unsupported projector_hidden_act 'relu'/],
    [{ ...LLAVA_15_7B, vision_feature_layer: [-2, -5] }, /unsupported a list vision_feature_layer/],
    [{ ...LLAVA_15_7B, vision_feature_select_strategy: 'cls' }, /vision_feature_select_strategy 'cls'/],
    [{ ...LLAVA_15_7B, vision_feature_layer: -26 }, /vision_feature_layer -26 is out of range for 24 CLIP layers/],
    [withText({ num_key_value_heads: 5 }), /num_attention_heads 32 is not a multiple of num_key_value_heads 5/],
    [withText({ hidden_size: 4090 }), /hidden_size 4090 is not divisible by num_attention_heads 32/],
    [withVision({ image_size: 330 }), /image_size 330 is not a multiple of patch_size 14/],
    [withText({ num_hidden_layers: 0 }), /text_config: num_hidden_layers/],
    [withText({ rms_norm_eps: 'tiny' }), /text_config: rms_norm_eps/],
  ])('rejects %#', (config, message) => {
    expect(() => parse(config)).toThrow(message);
  });

  it("reads transformers 5's image_token_id and rope_parameters", () => {
    const c = parse({
      ...withText({ rope_parameters: { rope_type: 'default', rope_theta: 500000 } }),
      image_token_index: undefined,
      image_token_id: 32001,
    });
    expect(c.imageTokenIndex).toBe(32001);
    expect(c.text.ropeTheta).toBe(500000);
    expect(() => parse(withText({ rope_parameters: { rope_type: 'yarn', rope_theta: 1e4 } }))).toThrow(
      /unsupported text_config.rope_parameters/,
    );
  });

  it('accepts rope_scaling null or of the default type', () => {
    expect(() => parse(withText({ rope_scaling: null }))).not.toThrow();
    expect(() => parse(withText({ rope_scaling: { rope_type: 'default' } }))).not.toThrow();
  });

  it('names the file on malformed JSON', () => {
    expect(() => parseLlavaConfig('{"model_type": "llava",', '/m/config.json')).toThrow(/\/m\/config.json: not valid JSON/);
  });

  it('tied embeddings read the output projection from embed_tokens', () => {
    const c = parse({ ...LLAVA_15_7B, tie_word_embeddings: true });
    expect(c.text.tieWordEmbeddings).toBe(true);
    expect(new WeightNames('legacy', true).lmHead()).toBe('language_model.model.embed_tokens.weight');
  });
});

/** In the shape of llava-hf/llava-v1.6-mistral-7b-hf's config.json: Mistral text model, omitted CLIP and LlavaNext defaults. */
const LLAVA_16_MISTRAL_7B = {
  architectures: ['LlavaNextForConditionalGeneration'],
  ignore_index: -100,
  image_grid_pinpoints: [
    [336, 672],
    [672, 336],
    [672, 672],
    [1008, 336],
    [336, 1008],
  ],
  image_token_index: 32000,
  model_type: 'llava_next',
  projector_hidden_act: 'gelu',
  text_config: {
    _name_or_path: 'mistralai/Mistral-7B-Instruct-v0.2',
    architectures: ['MistralForCausalLM'],
    intermediate_size: 14336,
    max_position_embeddings: 32768,
    model_type: 'mistral',
    num_key_value_heads: 8,
    rms_norm_eps: 1e-5,
    rope_theta: 1000000.0,
    sliding_window: null,
    torch_dtype: 'bfloat16',
    vocab_size: 32064,
  },
  tie_word_embeddings: false,
  use_image_newline_parameter: true,
  vision_config: LLAVA_15_7B.vision_config,
  vision_feature_layer: -2,
  vision_feature_select_strategy: 'default',
  vocab_size: 32064,
};
const withNextText = (extra: Record<string, unknown>) => ({
  ...LLAVA_16_MISTRAL_7B,
  text_config: { ...LLAVA_16_MISTRAL_7B.text_config, ...extra },
});

describe('parseLlavaConfig: LLaVA-NeXT', () => {
  it('reads a Mistral NeXT config: rope theta 1e6, no sliding window, GQA, the AnyRes resolutions', () => {
    const c = parse(LLAVA_16_MISTRAL_7B);
    expect(c.anyres).toEqual({ gridPinpoints: LLAVA_16_MISTRAL_7B.image_grid_pinpoints });
    expect(c.text).toMatchObject({
      ropeTheta: 1e6,
      numKvHeads: 8,
      intermediateSize: 14336,
      maxPositionEmbeddings: 32768,
      vocabSize: 32064,
    });
    expect(c.text.slidingWindow).toBeUndefined();
    expect(numVisualTokens(c)).toBe(576); // per view
  });

  it("fills in MistralConfig's defaults (sliding window 4096, 8 KV heads) and LlavaNextConfig's pinpoints", () => {
    const { sliding_window: _, num_key_value_heads: __, ...text } = LLAVA_16_MISTRAL_7B.text_config;
    const { image_grid_pinpoints: ___, ...top } = LLAVA_16_MISTRAL_7B;
    const c = parse({ ...top, text_config: text });
    expect(c.text.slidingWindow).toBe(4096);
    expect(c.text.numKvHeads).toBe(8);
    expect(c.anyres!.gridPinpoints).toEqual(LLAVA_16_MISTRAL_7B.image_grid_pinpoints);
    expect(parse(withNextText({ sliding_window: 2048 })).text.slidingWindow).toBe(2048);
    // Llama has no sliding window: the key means nothing there.
    expect(parse(withText({ sliding_window: 16 })).text.slidingWindow).toBeUndefined();
  });

  it('reads the Vicuna and Yi-34B NeXT checkpoints as Llama decoders', () => {
    const vicuna = parse({ ...LLAVA_16_MISTRAL_7B, text_config: LLAVA_15_7B.text_config });
    expect(vicuna.text).toMatchObject({ ropeTheta: 10000, numKvHeads: 32, intermediateSize: 11008 });
    const yi = parse({
      ...LLAVA_16_MISTRAL_7B,
      image_token_index: 64000,
      text_config: {
        _name_or_path: 'NousResearch/Nous-Hermes-2-Yi-34B',
        architectures: ['LlamaForCausalLM'],
        hidden_size: 7168,
        intermediate_size: 20480,
        max_position_embeddings: 4096,
        model_type: 'llama',
        num_attention_heads: 56,
        num_hidden_layers: 60,
        num_key_value_heads: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 5000000,
        vocab_size: 64064,
      },
    });
    expect(yi.text).toMatchObject({ hiddenSize: 7168, numLayers: 60, numHeads: 56, numKvHeads: 8, headDim: 128, ropeTheta: 5e6 });
    expect(yi.anyres).toBeDefined();
  });

  it.each([
    [
      { ...LLAVA_16_MISTRAL_7B, vision_feature_select_strategy: 'full' },
      /unsupported vision_feature_select_strategy 'full' with llava_next/,
    ],
    [{ ...LLAVA_16_MISTRAL_7B, image_grid_pinpoints: [[336, 500]] }, /\[336, 500\] is not a whole number of 336-pixel tiles/],
    [withNextText({ rope_scaling: { type: 'linear', factor: 2 } }), /unsupported text_config.rope_scaling.*supported: .*'llava_next'/],
  ])('rejects %#', (config, message) => {
    expect(() => parse(config)).toThrow(message);
  });
});

describe('weight names', () => {
  it('maps both transformers layouts', () => {
    const legacy = new WeightNames('legacy', false);
    const unified = new WeightNames('unified', false);
    expect(legacy.vision('pre_layrnorm.weight')).toBe('vision_tower.vision_model.pre_layrnorm.weight');
    expect(unified.vision('pre_layrnorm.weight')).toBe('model.vision_tower.vision_model.pre_layrnorm.weight');
    expect(legacy.projector('linear_1.weight')).toBe('multi_modal_projector.linear_1.weight');
    expect(unified.projector('linear_1.weight')).toBe('model.multi_modal_projector.linear_1.weight');
    expect(legacy.text('layers.3.mlp.up_proj.weight')).toBe('language_model.model.layers.3.mlp.up_proj.weight');
    expect(unified.text('layers.3.mlp.up_proj.weight')).toBe('model.language_model.layers.3.mlp.up_proj.weight');
    expect(legacy.lmHead()).toBe('language_model.lm_head.weight');
    expect(unified.lmHead()).toBe('lm_head.weight');
    expect(legacy.imageNewline()).toBe('image_newline');
    expect(unified.imageNewline()).toBe('model.image_newline');
  });

  it('detects the layout from the embedding name, or says what it looked for', () => {
    expect(detectVisionPrefix(['vision_tower.vision_model.embeddings.patch_embedding.weight'], 'legacy')).toBe(
      'vision_tower.vision_model.',
    );
    // transformers 5 writes the CLIP tower flat
    expect(detectVisionPrefix(['vision_tower.embeddings.patch_embedding.weight'], 'legacy')).toBe('vision_tower.');
    expect(detectVisionPrefix(['model.vision_tower.embeddings.patch_embedding.weight'], 'unified')).toBe('model.vision_tower.');
    expect(detectLayout(['language_model.model.embed_tokens.weight'])).toBe('legacy');
    expect(detectLayout(['model.language_model.embed_tokens.weight', 'lm_head.weight'])).toBe('unified');
    expect(() => detectLayout(['model.embed_tokens.weight'])).toThrow(
      /no token embedding found: expected "language_model.model.embed_tokens.weight"/,
    );
  });
});

describe('parameterCount', () => {
  it("gives Hugging Face's count for llava-1.5-7b (index total_size 14126854144 bytes of fp16)", () => {
    expect(parameterCount(parse(LLAVA_15_7B))).toBe(14_126_854_144 / 2);
  });

  it('equals the elements of every tensor in a checkpoint (MHA, GQA, tied embeddings)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tp-params-'));
    try {
      const shapes = [{ preset: 'tiny' }, { preset: 'tiny-gqa' }, { preset: 'tiny', tieWordEmbeddings: true }] as const;
      for (const [i, shape] of shapes.entries()) {
        const { dir } = await makeSyntheticCheckpoint(join(root, String(i)), shape);
        const elements = [...readCheckpointWeights(dir).values()].reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
        expect(parameterCount(parseLlavaConfig(readFileSync(join(dir, 'config.json'), 'utf8')))).toBe(elements);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
