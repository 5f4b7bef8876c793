// Checks the float64 reference itself (tests/helpers) against hand-computed cases and mathematical
// identities, so that parity against it means something.
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { maxAbsDiff } from '../helpers/diff.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import {
  bf16BitsToFloat,
  float32ToBf16Bits,
  float32ToFp16Bits,
  fp16BitsToFloat,
  readSafetensorsFile,
  type Tensor64,
} from '../helpers/safetensors.js';
import { applyRope, attentionProbs, erf, geluErf, norm, quickGelu, ropeRows, type Mat } from '../helpers/reference-math.js';
import {
  loadReferenceModel,
  range,
  referenceDecoderLayer,
  referenceGenerate,
  referencePrefill,
  referenceProbe,
  referenceVision,
  type ReferenceModel,
} from '../helpers/reference.js';

const tmp = mkdtempSync(join(tmpdir(), 'reference-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function pixelsFor(ck: SyntheticCheckpoint): Float64Array {
  return new Float64Array(3 * ck.shape.imageSize ** 2).map((_, i) => Math.sin(i * 0.37) * 1.5);
}

describe('number formats', () => {
  it('fp16 encodes known values and round-trips every finite half', () => {
    expect(float32ToFp16Bits(1)).toBe(0x3c00);
    expect(float32ToFp16Bits(-2)).toBe(0xc000);
    expect(float32ToFp16Bits(65504)).toBe(0x7bff);
    expect(float32ToFp16Bits(1e6)).toBe(0x7c00); // overflow -> inf
    expect(float32ToFp16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFp16Bits(0.1)).toBe(0x2e66);
    expect(float32ToFp16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(float32ToFp16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    const mismatches: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue; // inf / NaN
      if (float32ToFp16Bits(fp16BitsToFloat(bits)) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  it('bf16 keeps the top 16 bits of float32, rounding to nearest even', () => {
    expect(float32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToFloat(0x3f80)).toBe(1);
    expect(float32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(float32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16BitsToFloat(0xc0490000 >>> 16)).toBeCloseTo(-3.140625, 10);
  });
});

describe('reference math', () => {
  it('erf matches tabulated values to 1e-15', () => {
    const table: [number, number][] = [
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [3.5, 0.9999992569016276],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, y] of table) expect(Math.abs(erf(x) - y)).toBeLessThan(1e-15);
    expect(geluErf(1)).toBeCloseTo(0.8413447460685429, 14);
  });

  it('RoPE rotates (i, i+d/2) pairs by position * theta^(-2i/d), preserving the norm', () => {
    const head = Float64Array.from([1, 0, 0, 0]); // d = 4: pairs (0,2) and (1,3)
    applyRope(head, 3, 10000);
    expect(head[0]).toBeCloseTo(Math.cos(3), 15);
    expect(head[2]).toBeCloseTo(Math.sin(3), 15);
    const second = Float64Array.from([0, 1, 0, 0]);
    applyRope(second, 3, 10000);
    expect(second[1]).toBeCloseTo(Math.cos(3 / 100), 15); // 10000^(-2/4) = 1/100
    expect(second[3]).toBeCloseTo(Math.sin(3 / 100), 15);

    const v = Float64Array.from({ length: 16 }, (_, i) => Math.cos(i * 1.7) + 0.2);
    const rotated = v.slice();
    applyRope(rotated, 123, 10000);
    expect(norm(rotated)).toBeCloseTo(norm(v), 12);
  });

  it('RoPE makes q.k depend only on the position difference', () => {
    const q: Mat = { rows: 1, cols: 8, data: Float64Array.from([0.3, -1, 2, 0.5, 1, 0.1, -0.7, 0.9]) };
    const k: Mat = { rows: 1, cols: 8, data: Float64Array.from([1, 0.2, -0.4, 1.1, -0.3, 0.8, 0.6, -1.2]) };
    const score = (m: number, n: number) => {
      const a = ropeRows(q, 1, [m], 10000).data;
      const b = ropeRows(k, 1, [n], 10000).data;
      return a.reduce((s, x, i) => s + x * b[i], 0);
    };
    expect(score(7, 3)).toBeCloseTo(score(104, 100), 12);
    expect(score(0, 0)).toBeCloseTo(score(50, 50), 12);
  });

  it('attention rows sum to 1 and masked keys get exactly 0', () => {
    const q: Mat = { rows: 4, cols: 8, data: Float64Array.from({ length: 32 }, (_, i) => Math.sin(i)) };
    const k: Mat = { rows: 4, cols: 4, data: Float64Array.from({ length: 16 }, (_, i) => Math.cos(i * 0.7)) };
    const probs = attentionProbs(q, k, 4, 2, (i, j) => j <= i); // 4 query heads of dim 2 over 2 KV heads
    for (let h = 0; h < 4; h++) {
      for (let i = 0; i < 4; i++) {
        const rowProbs = probs.subarray((h * 4 + i) * 4, (h * 4 + i + 1) * 4);
        expect(rowProbs.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 14);
        for (let j = i + 1; j < 4; j++) expect(rowProbs[j]).toBe(0);
      }
    }
  });
});

/** A one-layer, one-head Llama with D = 2 whose output is worked out by hand below. */
function handModel(weights: Record<string, number[]>): ReferenceModel {
  const shapes: Record<string, number[]> = {
    'self_attn.q_proj.weight': [2, 2],
    'self_attn.k_proj.weight': [2, 2],
    'self_attn.v_proj.weight': [2, 2],
    'self_attn.o_proj.weight': [2, 2],
    'mlp.gate_proj.weight': [1, 2],
    'mlp.up_proj.weight': [1, 2],
    'mlp.down_proj.weight': [2, 1],
    'input_layernorm.weight': [2],
    'post_attention_layernorm.weight': [2],
  };
  return {
    text: { hidden: 2, intermediate: 1, layers: 1, heads: 1, kvHeads: 1, headDim: 2, rmsNormEps: 0, ropeTheta: 10000, vocabSize: 1 },
    vision: { hidden: 0, layers: 0, heads: 1, imageSize: 0, patchSize: 1, layerNormEps: 0, activation: (x) => x },
    imageTokenIndex: -1,
    featureLayers: [-2],
    selectStrategy: 'default',
    projectorActivation: (x) => x,
    weight(name: string): Tensor64 {
      const key = name.replace('language_model.model.layers.0.', '');
      return { shape: shapes[key], data: Float64Array.from(weights[key]) };
    },
  };
}

describe('reference Llama layer, by hand', () => {
  const I = [1, 0, 0, 1];
  const x: Mat = { rows: 2, cols: 2, data: Float64Array.from([1, 0, 0, 2]) };
  const r2 = Math.SQRT2;

  it('attention: RMSNorm, RoPE at positions, causal softmax, residual', () => {
    const model = handModel({
      'self_attn.q_proj.weight': I,
      'self_attn.k_proj.weight': I,
      'self_attn.v_proj.weight': I,
      'self_attn.o_proj.weight': I,
      'mlp.gate_proj.weight': [0, 0],
      'mlp.up_proj.weight': [0, 0],
      'mlp.down_proj.weight': [0, 0],
      'input_layernorm.weight': [1, 1],
      'post_attention_layernorm.weight': [1, 1],
    });
    // RMSNorm: t0 = [1,0] -> [√2, 0]; t1 = [0,2] -> [0, √2]. Head dim 2, so RoPE angle = position.
    // q1 = k1 = rotate([0, √2], 1) = [-√2 sin 1, √2 cos 1]; q0 = k0 = [√2, 0] (position 0).
    // Query 0 sees only key 0 -> out0 = v0 = [√2, 0].
    // Query 1: scores (q1.k0, q1.k1)/√2 = (-√2 sin 1, √2); out1 = p0 v0 + p1 v1 with v = the normed rows.
    const s0 = -r2 * Math.sin(1);
    const s1 = r2;
    const p0 = Math.exp(s0) / (Math.exp(s0) + Math.exp(s1));
    const p1 = 1 - p0;
    const { out, side } = referenceDecoderLayer(model, 0, x, [0, 1], null);
    const expected = [1 + r2, 0, p0 * r2, 2 + p1 * r2];
    expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-14);
    expect(side.attnRatio[0]).toBeCloseTo(1, 14);
    expect(side.attnCos[0]).toBeCloseTo(1, 14);
    expect(side.attnRatio[1]).toBeCloseTo(Math.hypot(p0, p1), 14); // |[p0√2, p1√2]| / |[0, √2]|
    expect(side.attnCos[1]).toBeCloseTo(p1 / Math.hypot(p0, p1), 14);
  });

  it('MLP: SwiGLU on the post-attention RMSNorm, before the residual', () => {
    const model = handModel({
      'self_attn.q_proj.weight': I,
      'self_attn.k_proj.weight': I,
      'self_attn.v_proj.weight': I,
      'self_attn.o_proj.weight': [0, 0, 0, 0],
      'mlp.gate_proj.weight': [1, 1],
      'mlp.up_proj.weight': [1, 1],
      'mlp.down_proj.weight': [1, -1],
      'input_layernorm.weight': [1, 1],
      'post_attention_layernorm.weight': [2, 1],
    });
    // attention contributes 0, so f_in = RMSNorm(x) * [2, 1]: t0 -> [2√2, 0], t1 -> [0, √2].
    // gate = silu(sum f_in), up = sum f_in, f_out = gate*up * [1, -1].
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const f = (s: number) => silu(s) * s;
    const { out, side } = referenceDecoderLayer(model, 0, x, [0, 1], null);
    const expected = [1 + f(2 * r2), -f(2 * r2), f(r2), 2 - f(r2)];
    expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-13);
    expect(side.mlpCos[0]).toBeCloseTo(Math.SQRT1_2, 14); // [2√2,0] vs [a,-a]
    expect(side.mlpRatio[1]).toBeCloseTo((f(r2) * r2) / r2, 13);
  });
});

describe('reference CLIP vision tower and projector, by hand', () => {
  // One 1x1-pixel patch + CLS, Dv = 2, one encoder layer, LayerNorm eps 0: a 2-vector [a, b] then
  // normalizes to [sign(a - b), sign(b - a)], which keeps every step checkable by hand.
  const v = 'vision_tower.vision_model';
  const weights: Record<string, number[]> = {
    [`${v}.embeddings.patch_embedding.weight`]: [1, 0, 0, 0, 1, 0], // [2, 3, 1, 1]: (r, g)
    [`${v}.embeddings.class_embedding`]: [1, 0],
    [`${v}.embeddings.position_embedding.weight`]: [0, 0, 0, 0],
    [`${v}.pre_layrnorm.weight`]: [2, 1],
    [`${v}.pre_layrnorm.bias`]: [0.5, 0],
    [`${v}.encoder.layers.0.layer_norm1.weight`]: [1, 1],
    [`${v}.encoder.layers.0.layer_norm1.bias`]: [0, 0],
    [`${v}.encoder.layers.0.self_attn.q_proj.weight`]: [1, 0, 0, 1],
    [`${v}.encoder.layers.0.self_attn.q_proj.bias`]: [0, 0],
    [`${v}.encoder.layers.0.self_attn.k_proj.weight`]: [1, 0, 0, 1],
    [`${v}.encoder.layers.0.self_attn.k_proj.bias`]: [0, 0],
    [`${v}.encoder.layers.0.self_attn.v_proj.weight`]: [1, 0, 0, 1],
    [`${v}.encoder.layers.0.self_attn.v_proj.bias`]: [0.5, 0.5],
    [`${v}.encoder.layers.0.self_attn.out_proj.weight`]: [1, 0, 0, 1],
    [`${v}.encoder.layers.0.self_attn.out_proj.bias`]: [0, 0],
    [`${v}.encoder.layers.0.layer_norm2.weight`]: [1, 1],
    [`${v}.encoder.layers.0.layer_norm2.bias`]: [0, 0],
    [`${v}.encoder.layers.0.mlp.fc1.weight`]: [1, 0],
    [`${v}.encoder.layers.0.mlp.fc1.bias`]: [0],
    [`${v}.encoder.layers.0.mlp.fc2.weight`]: [1, 1],
    [`${v}.encoder.layers.0.mlp.fc2.bias`]: [0, 0.1],
    'multi_modal_projector.linear_1.weight': [1, 0, 0, 1],
    'multi_modal_projector.linear_1.bias': [0, 0],
    'multi_modal_projector.linear_2.weight': [1, 0, 0, 1],
    'multi_modal_projector.linear_2.bias': [0.1, -0.1],
  };
  const shapes: Record<string, number[]> = {
    'patch_embedding.weight': [2, 3, 1, 1],
    'position_embedding.weight': [2, 2],
    'fc1.weight': [1, 2],
    'fc1.bias': [1],
    'fc2.weight': [2, 1],
  };
  const model = (selectStrategy: 'default' | 'full'): ReferenceModel => ({
    text: { hidden: 2, intermediate: 1, layers: 0, heads: 1, kvHeads: 1, headDim: 2, rmsNormEps: 0, ropeTheta: 1, vocabSize: 1 },
    vision: { hidden: 2, layers: 1, heads: 1, imageSize: 1, patchSize: 1, layerNormEps: 0, activation: quickGelu },
    imageTokenIndex: -1,
    featureLayers: [-1],
    selectStrategy,
    projectorActivation: geluErf,
    weight(name: string): Tensor64 {
      const data = weights[name];
      const key = Object.keys(shapes).find((k) => name.endsWith(k));
      return { shape: key ? shapes[key] : data.length === 4 ? [2, 2] : [data.length], data: Float64Array.from(data) };
    },
  });

  it('embeds, pre-normalizes, runs a pre-norm encoder layer with quick_gelu, selects and projects', () => {
    const pixels = [0.25, 0.75, 0.5]; // (r, g, b) of the single pixel
    const full = referenceVision(model('full'), pixels);
    // CLS [1, 0] -> LN -> [1, -1] * [2, 1] + [0.5, 0] = [2.5, -1]; patch (r, g) = [0.25, 0.75] -> [-1.5, 1].
    expect(Array.from(full.hiddenStates[0].data)).toEqual([2.5, -1, -1.5, 1]);
    // layer_norm1 -> q = k = [1, -1], [-1, 1]; v adds 0.5. Scores +-2/sqrt(2): softmax keeps s = logistic(2 sqrt 2) on the diagonal.
    const s = 1 / (1 + Math.exp(-2 * Math.SQRT2));
    const mid0 = [2 + 2 * s, 0.5 - 2 * s]; // x0 + s v0 + (1 - s) v1
    const mid1 = [-2 * s, 0.5 + 2 * s];
    // layer_norm2 gives [1, -1] / [-1, 1]; fc1 picks the first: +1 / -1; quick_gelu; fc2 copies it to both, + [0, 0.1].
    const q1 = 1 / (1 + Math.exp(-1.702));
    const qm1 = -1 / (1 + Math.exp(1.702));
    const out = [mid0[0] + q1, mid0[1] + q1 + 0.1, mid1[0] + qm1, mid1[1] + qm1 + 0.1];
    expect(maxAbsDiff(full.hiddenStates[1].data, out)).toBeLessThan(1e-15);
    expect(maxAbsDiff(full.visionFeatures.data, full.hiddenStates[1].data)).toBe(0); // 'full' keeps CLS
    const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    expect(
      maxAbsDiff(
        full.imageFeatures.data,
        out.map((x, i) => gelu(x) + (i % 2 === 0 ? 0.1 : -0.1)),
      ),
    ).toBeLessThan(1e-15);
    const drop = referenceVision(model('default'), pixels);
    expect(maxAbsDiff(drop.visionFeatures.data, full.hiddenStates[1].data.subarray(2))).toBe(0); // 'default' drops CLS
  });
});

describe('tiny checkpoints and the reference model', () => {
  let tiny: SyntheticCheckpoint;
  let gqa: SyntheticCheckpoint;
  let model: ReferenceModel;
  beforeAll(async () => {
    tiny = await makeSyntheticCheckpoint(join(tmp, 'tiny'));
    gqa = await makeSyntheticCheckpoint(join(tmp, 'gqa'), { preset: 'tiny-gqa' });
    model = loadReferenceModel(tiny.dir);
  });

  it('writes the HF files with LLaVA-1.5 config fields', () => {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
      expect(existsSync(join(tiny.dir, f))).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(gqa.dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model_type: 'llava',
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      projector_hidden_act: 'gelu',
      text_config: { model_type: 'llama', num_attention_heads: 6, num_key_value_heads: 2 },
      vision_config: { model_type: 'clip_vision_model', hidden_act: 'quick_gelu' },
    });
    const weights = readSafetensorsFile(join(tiny.dir, 'model.safetensors'));
    expect(weights.get('vision_tower.vision_model.embeddings.patch_embedding.weight')!.shape).toEqual([32, 3, 7, 7]);
    expect(weights.get('language_model.lm_head.weight')!.shape).toEqual([tiny.vocabSize, 64]);
  });

  it('ships a tokenizer.json that @huggingface/tokenizers loads, with <image> as one added token', () => {
    const tok = new Tokenizer(
      JSON.parse(readFileSync(join(tiny.dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(tiny.dir, 'tokenizer_config.json'), 'utf8')),
    );
    const text = 'USER: <image>\nWhat is the color of the sky? ASSISTANT: blue, naïve 🙂';
    const ids = tok.encode(text).ids;
    expect(ids[0]).toBe(tiny.tokens.bos);
    expect(ids.filter((id) => id === tiny.tokens.image)).toHaveLength(1);
    expect(tok.decode(tok.encode(text, { add_special_tokens: false }).ids)).toBe(text);
    expect(Math.max(...ids)).toBeLessThan(tiny.vocabSize);
  });

  it('legacy and new weight layouts, shards and seeds: same values, same outputs', async () => {
    const input = { inputIds: [tiny.tokens.bos, 400, tiny.tokens.image, 410, 420], pixelValues: pixelsFor(tiny) };
    const legacy = referencePrefill(model, input).logits;
    const newLayout = await makeSyntheticCheckpoint(join(tmp, 'new'), { layout: 'new', shards: 3 });
    expect(existsSync(join(newLayout.dir, 'model.safetensors.index.json'))).toBe(true);
    expect(
      readSafetensorsFile(join(newLayout.dir, 'model-00001-of-00003.safetensors')).has(
        'model.vision_tower.vision_model.embeddings.class_embedding',
      ),
    ).toBe(true);
    expect(maxAbsDiff(referencePrefill(loadReferenceModel(newLayout.dir), input).logits.data, legacy.data)).toBe(0);
    const otherSeed = await makeSyntheticCheckpoint(join(tmp, 'seed2'), { seed: 2 });
    expect(maxAbsDiff(referencePrefill(loadReferenceModel(otherSeed.dir), input).logits.data, legacy.data)).toBeGreaterThan(0.1);
  });

  it('tied word embeddings: no lm_head tensor, logits from the embedding matrix', async () => {
    const tied = await makeSyntheticCheckpoint(join(tmp, 'tied'), { tieWordEmbeddings: true, layout: 'new' });
    expect(readSafetensorsFile(join(tied.dir, 'model.safetensors')).has('lm_head.weight')).toBe(false);
    const tiedModel = loadReferenceModel(tied.dir);
    expect(tiedModel.weight('language_model.lm_head.weight')).toBe(tiedModel.weight('language_model.model.embed_tokens.weight'));
    const { logits } = referencePrefill(tiedModel, { inputIds: [tied.tokens.bos, 400, 410] });
    expect(logits.cols).toBe(tied.vocabSize);
  });

  it('fp16 and bf16 checkpoints hold the rounded fp32 weights', async () => {
    const half = await makeSyntheticCheckpoint(join(tmp, 'fp16'), { dtype: 'fp16' });
    const bf16 = await makeSyntheticCheckpoint(join(tmp, 'bf16'), { dtype: 'bf16' });
    const name = 'language_model.model.layers.1.mlp.up_proj.weight';
    const exact = model.weight(name).data;
    const h = loadReferenceModel(half.dir).weight(name).data;
    const b = loadReferenceModel(bf16.dir).weight(name).data;
    for (let i = 0; i < exact.length; i++) {
      expect(h[i]).toBe(fp16BitsToFloat(float32ToFp16Bits(exact[i])));
      expect(b[i]).toBe(bf16BitsToFloat(float32ToBf16Bits(exact[i])));
    }
  });

  it('patch embedding reads CHW pixels in raster patch order', () => {
    const { imageSize, patchSize, hidden } = model.vision;
    const grid = imageSize / patchSize;
    const pixels = new Float64Array(3 * imageSize * imageSize);
    const [c, py, px, ky, kx] = [2, 1, 3, 4, 5]; // one lit pixel in patch (row 1, col 3)
    pixels[(c * imageSize + py * patchSize + ky) * imageSize + px * patchSize + kx] = 1;
    const blank = referenceVision(model, new Float64Array(pixels.length)).hiddenStates[0];
    const lit = referenceVision(model, pixels).hiddenStates[0];
    const w = model.weight('vision_tower.vision_model.embeddings.patch_embedding.weight');
    // hiddenStates[0] is after pre_layrnorm, so compare only which rows changed.
    for (let r = 0; r < lit.rows; r++) {
      const changed = maxAbsDiff(lit.data.subarray(r * hidden, (r + 1) * hidden), blank.data.subarray(r * hidden, (r + 1) * hidden)) > 0;
      expect(changed).toBe(r === 1 + py * grid + px);
    }
    expect(w.shape).toEqual([hidden, 3, patchSize, patchSize]);
  });

  it('selects CLIP layer -2 without CLS and projects to the text width', () => {
    const v = referenceVision(model, pixelsFor(tiny));
    expect(v.hiddenStates).toHaveLength(model.vision.layers + 1);
    expect(v.visionFeatures.rows).toBe(tiny.numVisualTokens);
    const penultimate = v.hiddenStates[model.vision.layers - 1];
    expect(maxAbsDiff(v.visionFeatures.data, penultimate.data.subarray(penultimate.cols))).toBe(0);
    expect(v.imageFeatures.cols).toBe(64);
  });

  it('text before the image never sees it (causal), and the image block has N tokens', () => {
    const ids = [tiny.tokens.bos, 400, 401, tiny.tokens.image, 410];
    const a = referencePrefill(model, { inputIds: ids, pixelValues: pixelsFor(tiny) });
    const b = referencePrefill(model, { inputIds: ids, pixelValues: pixelsFor(tiny).map((p) => -p) });
    expect(a.visualStart).toBe(3);
    expect(a.embeds.rows).toBe(4 + tiny.numVisualTokens);
    for (let l = 0; l <= model.text.layers; l++) {
      expect(maxAbsDiff(a.hiddenStates[l].data.subarray(0, 3 * 64), b.hiddenStates[l].data.subarray(0, 3 * 64))).toBe(0);
    }
    expect(maxAbsDiff(a.logits.data, b.logits.data)).toBeGreaterThan(1e-3);
  });

  it('KV-cached decoding of a token equals running it inside the full sequence', () => {
    const ids = [tiny.tokens.bos, 400, tiny.tokens.image, 410, 420];
    const full = referencePrefill(model, { inputIds: ids, pixelValues: pixelsFor(tiny) });
    const prefix = referencePrefill(model, { inputIds: ids.slice(0, -1), pixelValues: pixelsFor(tiny) });
    const S = full.embeds.rows;
    let x: Mat = { rows: 1, cols: 64, data: full.embeds.data.slice((S - 1) * 64) };
    for (let l = 0; l < model.text.layers; l++) {
      const r = referenceDecoderLayer(model, l, x, [S - 1], prefix.caches[l]);
      x = r.out;
      expect(maxAbsDiff(x.data, full.hiddenStates[l + 1].data.subarray((S - 1) * 64))).toBeLessThan(1e-12);
    }
  });

  it('grouped-query attention equals MHA with each KV head repeated for its query group', () => {
    const gqaModel = loadReferenceModel(gqa.dir);
    const { heads, kvHeads, headDim } = gqaModel.text;
    const group = heads / kvHeads;
    const repeatKv = (t: Tensor64): Tensor64 => {
      const inDim = t.shape[1];
      const data = new Float64Array(heads * headDim * inDim);
      for (let h = 0; h < heads; h++) {
        const src = Math.floor(h / group) * headDim * inDim;
        data.set(t.data.subarray(src, src + headDim * inDim), h * headDim * inDim);
      }
      return { shape: [heads * headDim, inDim], data };
    };
    const mha: ReferenceModel = {
      ...gqaModel,
      text: { ...gqaModel.text, kvHeads: heads },
      weight: (name) =>
        /self_attn\.[kv]_proj/.test(name) && name.startsWith('language_model') ? repeatKv(gqaModel.weight(name)) : gqaModel.weight(name),
    };
    const input = { inputIds: [gqa.tokens.bos, 400, gqa.tokens.image, 410], pixelValues: pixelsFor(gqa) };
    expect(maxAbsDiff(referencePrefill(gqaModel, input).logits.data, referencePrefill(mha, input).logits.data)).toBeLessThan(1e-12);
  });

  it('the probe is layer attention averaged over heads and queries: a distribution per query row', () => {
    const run = referencePrefill(model, {
      inputIds: [tiny.tokens.bos, 400, tiny.tokens.image, 410, 420, 430],
      pixelValues: pixelsFor(tiny),
    });
    const S = run.embeds.rows;
    const queryStart = run.visualStart + run.visualCount;
    const probe = referenceProbe(model, 2, run.hiddenStates[2], range(0, S), queryStart);
    expect(probe.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 13);
    expect(probe.every((p) => p >= 0)).toBe(true);
    // The last query alone: nothing after it, and the mean over one query equals that query's row.
    const last = referenceProbe(model, 2, run.hiddenStates[2], range(0, S), S - 1);
    expect(last.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 13);
    // Averaging is linear: the mean over queries q..S-1 weights each single-query probe equally.
    const perQuery = range(queryStart, S).map((q) =>
      referenceProbe(model, 2, { rows: q + 1, cols: 64, data: run.hiddenStates[2].data.slice(0, (q + 1) * 64) }, range(0, q + 1), q),
    );
    const mean = new Float64Array(S);
    for (const p of perQuery) p.forEach((v, j) => (mean[j] += v / perQuery.length));
    expect(maxAbsDiff(mean, probe)).toBeLessThan(1e-14);
    expect(maxAbsDiff(perQuery.at(-1)!, last)).toBeLessThan(1e-14);
  });

  it('greedy generation is deterministic, not degenerate, and its first step is the prefill argmax', () => {
    const input = { inputIds: [tiny.tokens.bos, 400, tiny.tokens.image, 410, 420], pixelValues: pixelsFor(tiny) };
    const a = referenceGenerate(model, { ...input, maxNewTokens: 6 });
    const b = referenceGenerate(model, { ...input, maxNewTokens: 6 });
    expect(a.tokens).toEqual(b.tokens);
    expect(new Set(a.tokens).size).toBeGreaterThan(2);
    const logits = referencePrefill(model, input).logits;
    const last = logits.data.subarray((logits.rows - 1) * logits.cols);
    expect(a.tokens[0]).toBe(last.indexOf(Math.max(...last)));
  });
});
