// Each graph run through onnxruntime-node (CPU) on small random inputs and compared with a
// straightforward float64 computation written here, independent of src/engine/onnx.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLlavaConfig, type LlavaConfig } from '../../src/engine/model/config.js';
import { expectedTensors, WeightNames } from '../../src/engine/model/weights.js';
import { buildDecoderLayer } from '../../src/engine/onnx/graphs/decoder-layer.js';
import { buildProbe } from '../../src/engine/onnx/graphs/probe.js';
import type { GraphSource } from '../../src/engine/onnx/graphs/source.js';
import { WeightFile, type WeightDtype } from '../../src/engine/onnx/weight-file.js';

// ---- a tiny model: GQA (4 query heads over 2 KV heads), odd sizes so no shape can hide ----

const CONFIG_JSON = {
  model_type: 'llava',
  image_token_index: 40,
  vision_feature_layer: -2,
  text_config: {
    model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, vocab_size: 41, rms_norm_eps: 1e-5, rope_theta: 500,
  },
  vision_config: {
    hidden_size: 12, intermediate_size: 20, num_hidden_layers: 3, num_attention_heads: 3, image_size: 8, patch_size: 4,
  },
};

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

interface Weight { data: Float32Array; dims: number[] }

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

const w64 = (w: Weight) => Array.from(w.data);
function linear(x: Rows, w: Weight, bias?: Weight): Rows {
  const [out, inDim] = w.dims;
  return x.map((row) => Array.from({ length: out }, (_, o) => {
    let sum = bias ? bias.data[o] : 0;
    for (let i = 0; i < inDim; i++) sum += w.data[o * inDim + i] * row[i];
    return sum;
  }));
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

interface LayerRef { out: Rows; keys: number[][][]; values: number[][][]; attnRatio: number[]; attnCos: number[]; mlpRatio: number[]; mlpCos: number[] }

/** One Llama layer on S new rows after P cached keys/values ([kvHead][position][dh]). */
function referenceLayer(config: LlavaConfig, w: (n: string) => Weight, x: Rows, positions: number[], pastK: number[][][], pastV: number[][][]): LayerRef {
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
  const fOut = linear(gate.map((row, i) => row.map((gv, d) => (gv / (1 + Math.exp(-gv))) * up[i][d])), w('mlp.down_proj.weight'));
  const ratio = (a: Rows, b: Rows) => a.map((row, i) => norm(b[i]) / norm(row));
  const cos = (a: Rows, b: Rows) => a.map((row, i) => dot(row, b[i]) / (norm(row) * norm(b[i])));
  return {
    out: h.map((row, i) => row.map((val, d) => val + fOut[i][d])), keys, values,
    attnRatio: ratio(aIn, aOut), attnCos: cos(aIn, aOut), mlpRatio: ratio(fIn, fOut), mlpCos: cos(fIn, fOut),
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
      const logits = k.slice(0, i + 1).map((row, j) => dot(qh, rope(headOf(row, kh, t.headDim), positions[j], t.ropeTheta)) / Math.sqrt(t.headDim));
      softmax(logits).forEach((p, j) => { result[j] += p / (t.numHeads * queries); });
    }
  }
  return result;
}

// ---- harness ----

/** max |actual - expected| / max |expected|: relative to the tensor's scale, robust to entries near zero. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

const flat = (rows: number[][]) => rows.flat();
const randomRows = (rand: () => number, n: number, d: number, scale = 2): Rows => Array.from({ length: n }, () => Array.from({ length: d }, () => rand() * scale));
const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
const f32 = (values: number[], dims: number[]) => new ort.Tensor('float32', Float32Array.from(values), dims);

let dir: string;
const config = parseLlavaConfig(JSON.stringify(CONFIG_JSON));
const names = new WeightNames('legacy', false);
const weights = randomWeights(config, names, 7);
const source: GraphSource = {
  config,
  names,
  reader: { read: async (n) => { const found = weights.get(n); if (!found) throw new Error(`no ${n}`); return found; } },
};
const layerWeight = (layer: number) => (n: string) => weights.get(names.text(`layers.${layer}.${n}`))!;

async function session(bytes: Uint8Array, file: string): Promise<ort.InferenceSession> {
  const path = join(dir, file);
  writeFileSync(path, bytes);
  return ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
}

beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'graphs-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each<WeightDtype>(['fp32', 'fp16'])('decoder layer and probe (%s weights)', (dtype) => {
  // fp16 packs round the weights to half precision, so the reference must use the rounded values.
  const tol = 1e-4;
  let layerSession: ort.InferenceSession;
  let probeSession: ort.InferenceSession;
  const round = (w: Weight): Weight => (dtype === 'fp16' ? { dims: w.dims, data: roundToHalf(w.data) } : w);
  const w = (n: string) => round(layerWeight(1)(n));

  beforeAll(async () => {
    const file = new WeightFile(join(dir, `layer_01_${dtype}.bin`), dtype);
    const layerBytes = await buildDecoderLayer(source, 1, file);
    const probeBytes = await buildProbe(source, 1, file);
    file.close();
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
      past_key: f32(pastK.flat(2), [1, t.numKvHeads, P, t.headDim]),
      past_value: f32(pastV.flat(2), [1, t.numKvHeads, P, t.headDim]),
    });
    expect(out.present_key.dims).toEqual([1, t.numKvHeads, P + S, t.headDim]);
    expect(relativeError(out.hidden_out.data as Float32Array, flat(ref.out))).toBeLessThan(tol);
    expect(relativeError(out.present_key.data as Float32Array, ref.keys.flat(2))).toBeLessThan(tol);
    expect(relativeError(out.present_value.data as Float32Array, ref.values.flat(2))).toBeLessThan(tol);
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
    const full = await layerSession.run({ hidden: f32(flat(x), [1, 5, t.hiddenSize]), position_ids: int64(positions, [1, 5]), past_key: empty, past_value: empty });
    const prefix = await layerSession.run({ hidden: f32(flat(x.slice(0, 4)), [1, 4, t.hiddenSize]), position_ids: int64(positions.slice(0, 4), [1, 4]), past_key: empty, past_value: empty });
    const step = await layerSession.run({
      hidden: f32(x[4], [1, 1, t.hiddenSize]), position_ids: int64([4], [1, 1]),
      past_key: prefix.present_key, past_value: prefix.present_value,
    });
    const ref = referenceLayer(config, w, x, positions, Array.from({ length: t.numKvHeads }, () => []), Array.from({ length: t.numKvHeads }, () => []));
    expect(relativeError(full.hidden_out.data as Float32Array, flat(ref.out))).toBeLessThan(tol);
    expect(relativeError(step.hidden_out.data as Float32Array, ref.out[4])).toBeLessThan(tol);
  });

  it('probe: instruction-to-image attention from a query start, sharing the layer weight file', async () => {
    const t = config.text;
    const rand = seeded(13);
    const S = 7;
    const x = randomRows(rand, S, t.hiddenSize);
    const positions = [0, 1, 2, 5, 6, 7, 8];
    for (const queryStart of [4, S - 1]) {
      const out = await probeSession.run({ hidden: f32(flat(x), [1, S, t.hiddenSize]), position_ids: int64(positions, [1, S]), query_start: int64([queryStart], [1]) });
      expect(out.attention.dims).toEqual([S]);
      expect(relativeError(out.attention.data as Float32Array, referenceProbe(config, w, x, positions, queryStart))).toBeLessThan(tol);
    }
  });
});

/** float32 -> nearest half -> float32, computed with Math (independent of src/engine/io/float16). */
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
