// config.json of Qwen2.5-VL checkpoints in both layouts: the Hub's (transformers 4.x: the text model's keys at the
// top level, rope_scaling {type: mrope}, vision_config's in_chans) and transformers 5's nested text_config; and the
// refusals, which name what is supported.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/engine/model/config.js';
import { isQwenModelType, parseQwenConfig, qwenParameterCount } from '../../src/engine/model/qwen-config.js';
import { parseQwenImageParams } from '../../src/engine/image/qwen.js';
import { QWEN_CHECKPOINT_PRESETS, qwenConfigJson } from '../../src/engine/checkpoint/synthetic-qwen.js';

/** Qwen/Qwen2.5-VL-7B-Instruct's config.json as published (transformers 4.41 layout). */
const HUB_7B = {
  architectures: ['Qwen2_5_VLForConditionalGeneration'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  vision_start_token_id: 151652,
  vision_end_token_id: 151653,
  vision_token_id: 151654,
  image_token_id: 151655,
  video_token_id: 151656,
  hidden_act: 'silu',
  hidden_size: 3584,
  initializer_range: 0.02,
  intermediate_size: 18944,
  max_position_embeddings: 128000,
  max_window_layers: 28,
  model_type: 'qwen2_5_vl',
  num_attention_heads: 28,
  num_hidden_layers: 28,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vision_config: {
    depth: 32,
    hidden_act: 'silu',
    hidden_size: 1280,
    intermediate_size: 3420,
    num_heads: 16,
    in_chans: 3,
    out_hidden_size: 3584,
    patch_size: 14,
    spatial_merge_size: 2,
    spatial_patch_size: 14,
    window_size: 112,
    fullatt_block_indexes: [7, 15, 23, 31],
    tokens_per_second: 2,
    temporal_patch_size: 2,
  },
  rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
  vocab_size: 152064,
};

describe('parseQwenConfig', () => {
  it("reads the Hub's 7B config: Qwen2 text keys at the top level, M-RoPE from rope_scaling", () => {
    const text = JSON.stringify(HUB_7B);
    expect(isQwenModelType(text)).toBe(true);
    const c = parseQwenConfig(text);
    expect(c.text).toMatchObject({ hiddenSize: 3584, numLayers: 28, numHeads: 28, numKvHeads: 4, headDim: 128, intermediateSize: 18944 });
    expect(c.text).toMatchObject({
      ropeTheta: 1e6,
      mropeSection: [16, 24, 24],
      tieWordEmbeddings: false,
      rmsNormEps: 1e-6,
      vocabSize: 152064,
    });
    expect(c.vision).toMatchObject({
      depth: 32,
      hiddenSize: 1280,
      numHeads: 16,
      inChannels: 3,
      windowSize: 112,
      fullAttBlockIndexes: [7, 15, 23, 31],
    });
    expect([c.imageTokenId, c.visionEndTokenId, c.eosTokenId]).toEqual([151655, 151653, 151645]);
    // 8.29 B as the model card counts (vision 0.68 B, language model 7.6 B).
    expect(qwenParameterCount(c) / 1e9).toBeCloseTo(8.29, 2);
  });

  it("reads transformers 5's nested text_config with rope_parameters, and tied embeddings", () => {
    const { vision_config, rope_scaling: _, rope_theta: __, ...flat } = HUB_7B;
    const nested = {
      model_type: 'qwen2_5_vl',
      image_token_id: 151655,
      tie_word_embeddings: true,
      vision_config,
      text_config: {
        ...flat,
        model_type: 'qwen2_5_vl_text',
        rope_parameters: { rope_type: 'default', rope_theta: 5e5, mrope_section: [16, 24, 24] },
      },
    };
    const c = parseQwenConfig(JSON.stringify(nested));
    expect(c.text).toMatchObject({ ropeTheta: 5e5, mropeSection: [16, 24, 24], tieWordEmbeddings: true, numLayers: 28 });
  });

  it("make-checkpoint's qwen2.5-vl-7b preset has the published 7B's architecture", () => {
    const made = parseQwenConfig(JSON.stringify(qwenConfigJson(QWEN_CHECKPOINT_PRESETS['qwen2.5-vl-7b'])));
    const hub = parseQwenConfig(JSON.stringify(HUB_7B));
    expect(made.text).toEqual(hub.text);
    expect(made.vision).toEqual(hub.vision);
    expect(qwenParameterCount(made)).toBe(qwenParameterCount(hub));
  });

  it('refuses what it cannot run, naming what is supported', () => {
    const bad = (patch: object) => () => parseQwenConfig(JSON.stringify({ ...HUB_7B, ...patch }));
    expect(bad({ use_sliding_window: true })).toThrow(ConfigError);
    expect(bad({ use_sliding_window: true })).toThrow(/supported: model_type 'qwen2_5_vl'/);
    expect(bad({ rope_scaling: { type: 'yarn', factor: 4 } })).toThrow(/rotary scaling 'yarn'/);
    expect(bad({ rope_scaling: { type: 'mrope', mrope_section: [16, 16, 16] } })).toThrow(/must sum to head_dim \/ 2 = 64/);
    expect(bad({ vision_config: { ...HUB_7B.vision_config, window_size: 100 } })).toThrow(/window_size 100 is not a multiple of 28/);
    expect(bad({ model_type: 'qwen2_vl' })).toThrow(/unsupported model_type 'qwen2_vl'/);
  });
});

describe('parseQwenImageParams', () => {
  it("reads the Hub's preprocessor_config.json (min_pixels / max_pixels) and transformers 5's size keys alike", () => {
    const hub = {
      min_pixels: 3136,
      max_pixels: 12845056,
      patch_size: 14,
      temporal_patch_size: 2,
      merge_size: 2,
      image_processor_type: 'Qwen2VLImageProcessor',
    };
    expect(parseQwenImageParams(hub)).toMatchObject({
      minPixels: 3136,
      maxPixels: 12845056,
      patchSize: 14,
      mergeSize: 2,
      temporalPatchSize: 2,
    });
    expect(parseQwenImageParams({ size: { shortest_edge: 3136, longest_edge: 1003520 } })).toMatchObject({
      minPixels: 3136,
      maxPixels: 1003520,
    });
  });
});
