// Each graph run through onnxruntime-node (CPU) on small random inputs and compared with a
// straightforward float64 computation written here, independent of src/engine/onnx.

import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLlavaConfig, type LlavaConfig } from '../../src/engine/model/config.js';
import { expectedTensors, WeightNames } from '../../src/engine/model/weights.js';
import { buildDecoderLayer } from '../../src/engine/onnx/graphs/decoder-layer.js';
import { buildProbe } from '../../src/engine/onnx/graphs/probe.js';
import { buildEmbed, buildHead } from '../../src/engine/onnx/graphs/embed-head.js';
import { buildVision } from '../../src/engine/onnx/graphs/vision.js';
import type { GraphSource } from '../../src/engine/onnx/graphs/source.js';
import { WeightFile, type WeightDtype } from '../../src/engine/onnx/weight-file.js';
import { relativeError } from '../helpers/diff.js';

// ---- a tiny model: GQA (4 query heads over 2 KV heads), odd sizes so no shape can hide ----

const CONFIG_JSON = {
  model_type: 'llava',
  image_token_index: 40,
  vision_feature_layer: -2,
  text_config: {
    model_type: 'llama',
    hidden_size: 40,
    intermediate_size: 72,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 41,
    rms_norm_eps: 1e-5,
    rope_theta: 500,
  },
  vision_config: {
    hidden_size: 12,
    intermediate_size: 20,
    num_hidden_layers: 3,
    num_attention_heads: 3,
    image_size: 8,
    patch_size: 4,
  },
};

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

interface Weight {
  data: Float32Array;
  dims: number[];
}

function randomWeights(config: LlavaConfig, names: WeightNames, seed: number): Map<string, Weight> {
  const rand = seeded(seed);
  const weights = new Map<string, Weight>();
  for (const { name, shape } of expectedTensors(config, names)) {
    const isGain = /(norm|layrnorm|layer_norm\d)\.weight$/.test(name);
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (isGain ? 1 + rand() : rand()));
    weights.set(name, { data, dims: shape });
  }
  return weights;
}

// ---- float64 reference, written for clarity ----

type Rows = number[][];

function linear(x: Rows, w: Weight, bias?: Weight): Rows {
  const [out, inDim] = w.dims;
  return x.map((row) =>
    Array.from({ length: out }, (_, o) => {
      let sum = bias ? bias.data[o] : 0;
      for (let i = 0; i < inDim; i++) sum += w.data[o * inDim + i] * row[i];
      return sum;
    }),
  );
}
function rmsNorm(x: Rows, gain: Weight, eps: number): Rows {
  return x.map((row) => {
    const rms = Math.sqrt(row.reduce((s, v) => s + v * v, 0) / row.length + eps);
    return row.map((v, i) => (v / rms) * gain.data[i]);
  });
}
/** rotate_half RoPE on one head vector. */
function rope(head: number[], pos: number, theta: number): number[] {
  const half = head.length / 2;
  const out = [...head];
  for (let i = 0; i < half; i++) {
    const angle = pos * theta ** (-(2 * i) / head.length);
    out[i] = head[i] * Math.cos(angle) - head[i + half] * Math.sin(angle);
    out[i + half] = head[i + half] * Math.cos(angle) + head[i] * Math.sin(angle);
  }
  return out;
}
const headOf = (row: number[], h: number, dh: number) => row.slice(h * dh, (h + 1) * dh);
const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));
function softmax(xs: number[]): number[] {
  const max = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

interface LayerRef {
  out: Rows;
  keys: number[][][];
  values: number[][][];
  attnRatio: number[];
  attnCos: number[];
  mlpRatio: number[];
  mlpCos: number[];
}

/** One Llama layer on S new rows after P cached keys/values ([kvHead][position][dh]). */
function referenceLayer(
  config: LlavaConfig,
  w: (n: string) => Weight,
  x: Rows,
  positions: number[],
  pastK: number[][][],
  pastV: number[][][],
): LayerRef {
  const t = config.text;
  const groups = t.numHeads / t.numKvHeads;
  const aIn = rmsNorm(x, w('input_layernorm.weight'), t.rmsNormEps);
  const q = linear(aIn, w('self_attn.q_proj.weight'));
  const k = linear(aIn, w('self_attn.k_proj.weight'));
  const v = linear(aIn, w('self_attn.v_proj.weight'));
  const keys = pastK.map((rows, kh) => [...rows, ...k.map((row, i) => rope(headOf(row, kh, t.headDim), positions[i], t.ropeTheta))]);
  const values = pastV.map((rows, kh) => [...rows, ...v.map((row) => headOf(row, kh, t.headDim))]);
  const P = pastK[0].length;
  const context = x.map((_, i) => {
    const out: number[] = [];
    for (let h = 0; h < t.numHeads; h++) {
      const kh = Math.floor(h / groups);
      const qh = rope(headOf(q[i], h, t.headDim), positions[i], t.ropeTheta);
      const visible = keys[kh].slice(0, P + i + 1);
      const p = softmax(visible.map((key) => dot(qh, key) / Math.sqrt(t.headDim)));
      for (let d = 0; d < t.headDim; d++) out.push(p.reduce((s, pj, j) => s + pj * values[kh][j][d], 0));
    }
    return out;
  });
  const aOut = linear(context, w('self_attn.o_proj.weight'));
  const h = x.map((row, i) => row.map((val, d) => val + aOut[i][d]));
  const fIn = rmsNorm(h, w('post_attention_layernorm.weight'), t.rmsNormEps);
  const gate = linear(fIn, w('mlp.gate_proj.weight'));
  const up = linear(fIn, w('mlp.up_proj.weight'));
  const fOut = linear(
    gate.map((row, i) => row.map((gv, d) => (gv / (1 + Math.exp(-gv))) * up[i][d])),
    w('mlp.down_proj.weight'),
  );
  const ratio = (a: Rows, b: Rows) => a.map((row, i) => norm(b[i]) / norm(row));
  const cos = (a: Rows, b: Rows) => a.map((row, i) => dot(row, b[i]) / (norm(row) * norm(b[i])));
  return {
    out: h.map((row, i) => row.map((val, d) => val + fOut[i][d])),
    keys,
    values,
    attnRatio: ratio(aIn, aOut),
    attnCos: cos(aIn, aOut),
    mlpRatio: ratio(fIn, fOut),
    mlpCos: cos(fIn, fOut),
  };
}

/** Method spec section 3: causal softmax over all keys, mean over heads, then over queries queryStart..S-1. */
function referenceProbe(config: LlavaConfig, w: (n: string) => Weight, x: Rows, positions: number[], queryStart: number): number[] {
  const t = config.text;
  const aIn = rmsNorm(x, w('input_layernorm.weight'), t.rmsNormEps);
  const q = linear(aIn, w('self_attn.q_proj.weight'));
  const k = linear(aIn, w('self_attn.k_proj.weight'));
  const S = x.length;
  const result = new Array(S).fill(0);
  const queries = S - queryStart;
  for (let i = queryStart; i < S; i++) {
    for (let h = 0; h < t.numHeads; h++) {
      const kh = Math.floor(h / (t.numHeads / t.numKvHeads));
      const qh = rope(headOf(q[i], h, t.headDim), positions[i], t.ropeTheta);
      const logits = k
        .slice(0, i + 1)
        .map((row, j) => dot(qh, rope(headOf(row, kh, t.headDim), positions[j], t.ropeTheta)) / Math.sqrt(t.headDim));
      softmax(logits).forEach((p, j) => {
        result[j] += p / (t.numHeads * queries);
      });
    }
  }
  return result;
}

// ---- harness ----

const flat = (rows: number[][]) => rows.flat();
const randomRows = (rand: () => number, n: number, d: number, scale = 2): Rows =>
  Array.from({ length: n }, () => Array.from({ length: d }, () => rand() * scale));
const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
const f32 = (values: number[], dims: number[]) => new ort.Tensor('float32', Float32Array.from(values), dims);

/** A layer's cache inputs: P rows per KV head ([kvHead][position][dh]) in `capacity` slots; the empty ones hold junk to ignore. */
function cacheFeeds(pastK: Rows[], pastV: Rows[], capacity: number): Record<string, ort.Tensor> {
  const P = pastK[0].length;
  const dh = config.text.headDim;
  const slots = (heads: Rows[]) => heads.flatMap((rows) => [...rows.flat(), ...Array<number>((capacity - P) * dh).fill(1e4)]);
  const dims = [1, pastK.length, capacity, dh];
  return { past_key: f32(slots(pastK), dims), past_value: f32(slots(pastV), dims), past_length: int64([P], []), ...noKnownKeys() };
}

/** The layer projects every token's keys itself (no probe computed any). */
function noKnownKeys(): { known_key_proj: ort.Tensor } {
  return { known_key_proj: f32([], [1, 0, config.text.numKvHeads * config.text.headDim]) };
}

/** Each KV head's past rows followed by the rows the layer returned for the new tokens ([1, KvH, S, Dh]): the whole cache after the step. */
function withNewRows(past: Rows[], fresh: ort.Tensor): number[] {
  const [, , S, dh] = fresh.dims;
  const data = fresh.data as Float32Array;
  return past.flatMap((rows, h) => [...rows.flat(), ...data.subarray(h * S * dh, (h + 1) * S * dh)]);
}

let dir: string;
const config = parseLlavaConfig(JSON.stringify(CONFIG_JSON));
const names = new WeightNames('legacy', false);
const weights = randomWeights(config, names, 7);
const source: GraphSource = {
  config,
  names,
  reader: {
    read: async (n) => {
      const found = weights.get(n);
      if (!found) throw new Error(`no ${n}`);
      return found;
    },
    dims: (n) => weights.get(n)!.dims,
  },
};
const layerWeight = (layer: number) => (n: string) => weights.get(names.text(`layers.${layer}.${n}`))!;

async function session(bytes: Uint8Array, file: string): Promise<ort.InferenceSession> {
  const path = join(dir, file);
  writeFileSync(path, bytes);
  return ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'graphs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each<WeightDtype>(['fp32', 'fp16', 'int8', 'int4'])('decoder layer and probe (%s weights)', (dtype) => {
  // The reference uses the weights as the pack stores them: halves, or dequantized blocks for the linears.
  const tol = 1e-4;
  let layerSession: ort.InferenceSession;
  let probeSession: ort.InferenceSession;
  let layerBinBytes = 0;
  let probeAddedBytes = -1;
  const round = (w: Weight): Weight => {
    if (dtype === 'fp32') return w;
    if (dtype === 'fp16' || w.dims.length === 1) return { dims: w.dims, data: roundToHalf(w.data) };
    return { dims: w.dims, data: dequantized(w, dtype === 'int4' ? 4 : 8) };
  };
  const w = (n: string) => round(layerWeight(1)(n));

  beforeAll(async () => {
    const file = new WeightFile(join(dir, `layer_01_${dtype}.bin`), dtype);
    const layerBytes = await buildDecoderLayer(source, 1, file);
    layerBinBytes = statSync(file.path).size;
    const probeBytes = await buildProbe(source, 1, file);
    file.close();
    probeAddedBytes = statSync(file.path).size - layerBinBytes;
    // The graphs reference their weights by the file's name, so give them that name here.
    layerSession = await session(layerBytes, `layer_01_${dtype}.onnx`);
    probeSession = await session(probeBytes, `probe_01_${dtype}.onnx`);
  });

  it('matches the float64 layer with a KV cache, GQA and explicit positions', async () => {
    const t = config.text;
    const rand = seeded(11);
    const P = 3;
    const S = 4;
    const positions = [3, 4, 9, 10]; // explicit, with a gap as after pruning
    const pastK = Array.from({ length: t.numKvHeads }, () => randomRows(rand, P, t.headDim));
    const pastV = Array.from({ length: t.numKvHeads }, () => randomRows(rand, P, t.headDim));
    const x = randomRows(rand, S, t.hiddenSize);
    const ref = referenceLayer(config, w, x, positions, pastK, pastV);
    const out = await layerSession.run({
      hidden: f32(flat(x), [1, S, t.hiddenSize]),
      position_ids: int64(positions, [1, S]),
      ...cacheFeeds(pastK, pastV, P + 2),
    });
    expect(out.new_key.dims).toEqual([1, t.numKvHeads, S, t.headDim]);
    expect(relativeError(out.hidden_out.data as Float32Array, flat(ref.out))).toBeLessThan(tol);
    expect(relativeError(withNewRows(pastK, out.new_key), ref.keys.flat(2))).toBeLessThan(tol);
    expect(relativeError(withNewRows(pastV, out.new_value), ref.values.flat(2))).toBeLessThan(tol);
    expect(relativeError(out.attn_ratio.data as Float32Array, ref.attnRatio)).toBeLessThan(tol);
    expect(relativeError(out.attn_cos.data as Float32Array, ref.attnCos)).toBeLessThan(tol);
    expect(relativeError(out.mlp_ratio.data as Float32Array, ref.mlpRatio)).toBeLessThan(tol);
    expect(relativeError(out.mlp_cos.data as Float32Array, ref.mlpCos)).toBeLessThan(tol);
  });

  it('accepts an empty past (P = 0) and then decodes one token equal to full recomputation', async () => {
    const t = config.text;
    const rand = seeded(12);
    const x = randomRows(rand, 5, t.hiddenSize);
    const positions = [0, 1, 2, 3, 4];
    const empty = f32([], [1, t.numKvHeads, 0, t.headDim]);
    const full = await layerSession.run({
      hidden: f32(flat(x), [1, 5, t.hiddenSize]),
      position_ids: int64(positions, [1, 5]),
      past_key: empty,
      past_value: empty,
      past_length: int64([0], []),
      ...noKnownKeys(),
    });
    const prefix = await layerSession.run({
      hidden: f32(flat(x.slice(0, 4)), [1, 4, t.hiddenSize]),
      position_ids: int64(positions.slice(0, 4), [1, 4]),
      past_key: empty,
      past_value: empty,
      past_length: int64([0], []),
      ...noKnownKeys(),
    });
    const step = await layerSession.run({
      hidden: f32(x[4], [1, 1, t.hiddenSize]),
      position_ids: int64([4], [1, 1]),
      past_key: prefix.new_key,
      past_value: prefix.new_value,
      past_length: int64([4], []),
      ...noKnownKeys(),
    });
    const ref = referenceLayer(
      config,
      w,
      x,
      positions,
      Array.from({ length: t.numKvHeads }, () => []),
      Array.from({ length: t.numKvHeads }, () => []),
    );
    expect(relativeError(full.hidden_out.data as Float32Array, flat(ref.out))).toBeLessThan(tol);
    expect(relativeError(step.hidden_out.data as Float32Array, ref.out[4])).toBeLessThan(tol);
  });

  it('probe: instruction-to-image attention from a query start, sharing the layer weight file', async () => {
    expect(layerBinBytes).toBeGreaterThan(0);
    expect(probeAddedBytes).toBe(0); // every probe weight is a reference into the layer's file
    const t = config.text;
    const rand = seeded(13);
    const S = 7;
    const x = randomRows(rand, S, t.hiddenSize);
    const positions = [0, 1, 2, 5, 6, 7, 8];
    for (const queryStart of [4, S - 1]) {
      const out = await probeSession.run({
        hidden: f32(flat(x), [1, S, t.hiddenSize]),
        position_ids: int64(positions, [1, S]),
        query_start: int64([queryStart], [1]),
      });
      expect(out.attention.dims).toEqual([S]);
      expect(relativeError(out.attention.data as Float32Array, referenceProbe(config, w, x, positions, queryStart))).toBeLessThan(tol);
    }
  });

  it("probe's k_proj rows, pruned, stand in for the layer's own: same layer output at the kept tokens' positions", async () => {
    const t = config.text;
    const rand = seeded(14);
    const x = randomRows(rand, 8, t.hiddenSize);
    const probe = await probeSession.run({
      hidden: f32(flat(x), [1, 8, t.hiddenSize]),
      position_ids: int64([0, 1, 2, 3, 4, 5, 6, 7], [1, 8]),
      query_start: int64([6], [1]),
    });
    // Independent: k_proj of the normed rows, before RoPE.
    const keyProj = linear(rmsNorm(x, w('input_layernorm.weight'), t.rmsNormEps), w('self_attn.k_proj.weight'));
    expect(relativeError(probe.key_proj.data as Float32Array, flat(keyProj))).toBeLessThan(tol);

    const kept = [0, 2, 5, 6, 7]; // tokens 1, 3, 4 pruned
    const width = t.numKvHeads * t.headDim;
    const given = kept.flatMap((r) => [...(probe.key_proj.data as Float32Array).subarray(r * width, (r + 1) * width)]);
    const rows = kept.map((r) => x[r]);
    const noPast = Array.from({ length: t.numKvHeads }, () => []);
    for (const positions of [[0, 1, 2, 3, 4], kept]) {
      const ref = referenceLayer(config, w, rows, positions, noPast, noPast);
      const out = await layerSession.run({
        hidden: f32(flat(rows), [1, rows.length, t.hiddenSize]),
        position_ids: int64(positions, [1, rows.length]),
        ...cacheFeeds(noPast, noPast, 0),
        known_key_proj: f32(given, [1, rows.length, width]),
      });
      expect(relativeError(out.hidden_out.data as Float32Array, flat(ref.out))).toBeLessThan(tol);
      expect(relativeError(out.new_key.data as Float32Array, ref.keys.flat(2))).toBeLessThan(tol);
    }
    // The given rows are used, not recomputed: zero rows give zero keys (RoPE of zero).
    const zeros = await layerSession.run({
      hidden: f32(flat(rows), [1, rows.length, t.hiddenSize]),
      position_ids: int64(kept, [1, rows.length]),
      ...cacheFeeds(noPast, noPast, 0),
      known_key_proj: f32(new Array(given.length).fill(0), [1, rows.length, width]),
    });
    expect((zeros.new_key.data as Float32Array).every((v) => v === 0)).toBe(true);
  });
});

/** float32 -> nearest half -> float32, computed with Math (independent of src/engine/io/float16). */
describe.each<'int8' | 'int4'>(['int8', 'int4'])('decoder layer with int8 activations (%s weights, as packs import it)', (dtype) => {
  // MatMulNBits' int8 path also rounds each linear's input to int8 per block (1/254 of the block's largest
  // value at most), as llama.cpp's quantized dot products do: the layer stays within 5% of the float64 layer on
  // the same dequantized weights (measured with this model's rows of 40 inputs, one block each: 1.8% int8,
  // 4.5% int4), its cache and side outputs within 2% (1.4% at most measured).
  const tol = { hidden: 0.05, keys: 0.02, values: 0.02, attnRatio: 0.02, mlpRatio: 0.02 };
  const w = (n: string) => {
    const weight = layerWeight(1)(n);
    if (weight.dims.length === 1) return { dims: weight.dims, data: roundToHalf(weight.data) };
    return { dims: weight.dims, data: dequantized(weight, dtype === 'int4' ? 4 : 8) };
  };

  it('matches the float64 layer with a KV cache, GQA and explicit positions', async () => {
    const file = new WeightFile(join(dir, `layer_01_${dtype}_a8.bin`), dtype, { int8Activations: true });
    const bytes = await buildDecoderLayer(source, 1, file);
    file.close();
    const layer = await session(bytes, `layer_01_${dtype}_a8.onnx`);
    const t = config.text;
    const rand = seeded(11);
    const P = 3;
    const S = 4;
    const positions = [3, 4, 9, 10];
    const pastK = Array.from({ length: t.numKvHeads }, () => randomRows(rand, P, t.headDim));
    const pastV = Array.from({ length: t.numKvHeads }, () => randomRows(rand, P, t.headDim));
    const x = randomRows(rand, S, t.hiddenSize);
    const ref = referenceLayer(config, w, x, positions, pastK, pastV);
    const out = await layer.run({
      hidden: f32(flat(x), [1, S, t.hiddenSize]),
      position_ids: int64(positions, [1, S]),
      ...cacheFeeds(pastK, pastV, P + 2),
    });
    const errors = {
      hidden: relativeError(out.hidden_out.data as Float32Array, flat(ref.out)),
      keys: relativeError(withNewRows(pastK, out.new_key), ref.keys.flat(2)),
      values: relativeError(withNewRows(pastV, out.new_value), ref.values.flat(2)),
      attnRatio: relativeError(out.attn_ratio.data as Float32Array, ref.attnRatio),
      mlpRatio: relativeError(out.mlp_ratio.data as Float32Array, ref.mlpRatio),
    };
    for (const [what, error] of Object.entries(errors)) expect(error, what).toBeLessThan(tol[what as keyof typeof tol]);
    // Not exact: the int8 rounding is really there (an exact product would be within 1e-4, as above).
    expect(errors.hidden).toBeGreaterThan(1e-4);
  });
});

function roundToHalf(values: Float32Array): Float32Array {
  return values.map((v) => {
    if (v === 0) return 0;
    const exp = Math.max(Math.floor(Math.log2(Math.abs(v))), -14);
    const ulp = 2 ** (exp - 10);
    const q = v / ulp;
    const r = Math.round(q);
    const even = Math.abs(q - Math.trunc(q)) === 0.5 && r % 2 !== 0 ? r - Math.sign(q) : r; // ties to even
    return even * ulp;
  });
}

// ---- embed, head, vision ----

function layerNormRows(x: Rows, gain: Weight, bias: Weight, eps: number): Rows {
  return x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map((val, i) => ((val - mean) / Math.sqrt(variance + eps)) * gain.data[i] + bias.data[i]);
  });
}
const erf = (x: number): number => {
  // Abramowitz-Stegun 7.1.26 is too coarse for 1e-4; integrate the series instead (|x| is small here).
  let sum = 0;
  let term = x;
  for (let n = 0; n < 60; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
};

/** CLIP tower -> selected hidden state -> projector, in float64. */
function referenceVision(cfg: LlavaConfig, w: (n: string) => Weight, pixels: number[]): { features: Rows; selected: Rows } {
  const v = cfg.vision!;
  const grid = v.imageSize / v.patchSize;
  const patchW = w(names.vision('embeddings.patch_embedding.weight'));
  const tokens: Rows = [Array.from(w(names.vision('embeddings.class_embedding')).data)];
  for (let py = 0; py < grid; py++) {
    for (let px = 0; px < grid; px++) {
      tokens.push(
        Array.from({ length: v.hiddenSize }, (_, c) => {
          let sum = 0;
          for (let ch = 0; ch < v.numChannels; ch++) {
            for (let ky = 0; ky < v.patchSize; ky++) {
              for (let kx = 0; kx < v.patchSize; kx++) {
                const pixel = pixels[(ch * v.imageSize + py * v.patchSize + ky) * v.imageSize + px * v.patchSize + kx];
                sum += patchW.data[((c * v.numChannels + ch) * v.patchSize + ky) * v.patchSize + kx] * pixel;
              }
            }
          }
          return sum;
        }),
      );
    }
  }
  const pos = w(names.vision('embeddings.position_embedding.weight'));
  let h = layerNormRows(
    tokens.map((row, i) => row.map((val, d) => val + pos.data[i * v.hiddenSize + d])),
    w(names.vision('pre_layrnorm.weight')),
    w(names.vision('pre_layrnorm.bias')),
    v.layerNormEps,
  );
  const dh = v.hiddenSize / v.numHeads;
  for (let l = 0; l < cfg.visionFeatureLayer; l++) {
    const p = (s: string) => w(names.vision(`encoder.layers.${l}.${s}`));
    const n1 = layerNormRows(h, p('layer_norm1.weight'), p('layer_norm1.bias'), v.layerNormEps);
    const [q, k, val] = ['q_proj', 'k_proj', 'v_proj'].map((m) => linear(n1, p(`self_attn.${m}.weight`), p(`self_attn.${m}.bias`)));
    const context = n1.map((_, i) => {
      const out: number[] = [];
      for (let head = 0; head < v.numHeads; head++) {
        const probs = softmax(k.map((key) => dot(headOf(q[i], head, dh), headOf(key, head, dh)) / Math.sqrt(dh)));
        for (let d = 0; d < dh; d++) out.push(probs.reduce((s, pj, j) => s + pj * val[j][head * dh + d], 0));
      }
      return out;
    });
    const attn = linear(context, p('self_attn.out_proj.weight'), p('self_attn.out_proj.bias'));
    const mid = h.map((row, i) => row.map((x, d) => x + attn[i][d]));
    const n2 = layerNormRows(mid, p('layer_norm2.weight'), p('layer_norm2.bias'), v.layerNormEps);
    const act = linear(n2, p('mlp.fc1.weight'), p('mlp.fc1.bias')).map((row) => row.map((x) => x / (1 + Math.exp(-1.702 * x))));
    const mlp = linear(act, p('mlp.fc2.weight'), p('mlp.fc2.bias'));
    h = mid.map((row, i) => row.map((x, d) => x + mlp[i][d]));
  }
  const selected = cfg.visionFeatureSelectStrategy === 'default' ? h.slice(1) : h;
  const l1 = linear(selected, w(names.projector('linear_1.weight')), w(names.projector('linear_1.bias')));
  const act = l1.map((row) => row.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2))));
  return { selected, features: linear(act, w(names.projector('linear_2.weight')), w(names.projector('linear_2.bias'))) };
}

describe('embed, head and vision graphs (fp32)', () => {
  const w = (n: string) => weights.get(n)!;
  const build = async (file: string, make: (f: WeightFile) => Promise<Uint8Array>) => {
    const weightFile = new WeightFile(join(dir, `${file}.bin`), 'fp32');
    const bytes = await make(weightFile);
    weightFile.close();
    return session(bytes, `${file}.onnx`);
  };

  it('embed gathers the token rows', async () => {
    const s = await build('embed', (f) => buildEmbed(source, f));
    const ids = [0, 5, 40, 5];
    const out = await s.run({ input_ids: int64(ids, [1, 4]) });
    const D = config.text.hiddenSize;
    const table = w(names.text('embed_tokens.weight'));
    expect(out.embeds.dims).toEqual([1, 4, D]);
    expect(Array.from(out.embeds.data as Float32Array)).toEqual(ids.flatMap((id) => Array.from(table.data.subarray(id * D, (id + 1) * D))));
  });

  it('head applies the final RMSNorm and lm_head', async () => {
    const s = await build('head', (f) => buildHead(source, f));
    const x = randomRows(seeded(21), 3, config.text.hiddenSize);
    const ref = linear(rmsNorm(x, w(names.text('norm.weight')), config.text.rmsNormEps), w(names.lmHead()));
    const out = await s.run({ hidden: f32(flat(x), [1, 3, config.text.hiddenSize]) });
    expect(out.logits.dims).toEqual([1, 3, config.text.vocabSize]);
    expect(relativeError(out.logits.data as Float32Array, flat(ref))).toBeLessThan(1e-4);
  });

  it.each(['default', 'full'] as const)('vision: CLIP to the selected layer, strategy %s, then the projector', async (strategy) => {
    const cfg: LlavaConfig = { ...config, visionFeatureSelectStrategy: strategy };
    const s = await build(`vision_${strategy}`, (f) => buildVision({ ...source, config: cfg }, f));
    const v = cfg.vision!;
    const pixels = Array.from({ length: v.numChannels * v.imageSize * v.imageSize }, seeded(31)).map((p) => p * 4);
    const ref = referenceVision(cfg, w, pixels);
    const out = await s.run({ pixel_values: f32(pixels, [1, v.numChannels, v.imageSize, v.imageSize]) });
    const n = (v.imageSize / v.patchSize) ** 2 + (strategy === 'full' ? 1 : 0);
    expect(out.image_features.dims).toEqual([1, n, cfg.text.hiddenSize]);
    expect(out.vision_features.dims).toEqual([1, n, v.hiddenSize]);
    expect(relativeError(out.vision_features.data as Float32Array, flat(ref.selected))).toBeLessThan(1e-4);
    expect(relativeError(out.image_features.data as Float32Array, flat(ref.features))).toBeLessThan(1e-4);
  });
});

/** Inputs per quantization block, as packs store them. */
const BLOCK = 64;

/**
 * What MatMulNBits computes with: each row of a [out, in] weight cut into blocks of BLOCK inputs, each
 * block mapped onto 0..2^bits-1 over its range extended to include 0, rounded, and mapped back.
 */
function dequantized(w: Weight, bits: number): Float32Array {
  const [rows, cols] = w.dims;
  const out = new Float32Array(w.data.length);
  const levels = 2 ** bits - 1;
  for (let r = 0; r < rows; r++) {
    for (let start = 0; start < cols; start += BLOCK) {
      const block = Array.from(w.data.subarray(r * cols + start, r * cols + Math.min(cols, start + BLOCK)));
      const lo = Math.min(0, ...block);
      const hi = Math.max(0, ...block);
      const scale = Math.fround((hi - lo) / levels);
      const zero = Math.min(levels, Math.max(0, Math.round(-lo / scale)));
      block.forEach((v, i) => {
        const q = Math.min(levels, Math.max(0, Math.round(v / scale) + zero));
        out[r * cols + start + i] = (q - zero) * scale;
      });
    }
  }
  return out;
}
