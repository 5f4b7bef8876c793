// Float64 building blocks of the reference forward pass. Written for clarity (in the spirit of
// llama2.c's run.c): plain loops over row-major arrays, no tricks.
import type { Tensor64 } from './safetensors.js';

/** A row-major float64 matrix: `rows` tokens of `cols` features. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function zeros(rows: number, cols: number): Mat {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

export function row(m: Mat, i: number): Float64Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** The rows of `m` listed in `indices`, in that order. */
export function gatherRows(m: Mat, indices: ArrayLike<number>): Mat {
  const out = zeros(indices.length, m.cols);
  for (let i = 0; i < indices.length; i++) out.data.set(row(m, indices[i]), i * m.cols);
  return out;
}

export function concatRows(parts: Mat[]): Mat {
  const cols = parts[0].cols;
  const out = zeros(
    parts.reduce((n, p) => n + p.rows, 0),
    cols,
  );
  let offset = 0;
  for (const p of parts) {
    out.data.set(p.data, offset);
    offset += p.data.length;
  }
  return out;
}

export function add(a: Mat, b: Mat): Mat {
  const out = zeros(a.rows, a.cols);
  for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i] + b.data[i];
  return out;
}

export function map(a: Mat, f: (x: number) => number): Mat {
  const out = zeros(a.rows, a.cols);
  for (let i = 0; i < out.data.length; i++) out.data[i] = f(a.data[i]);
  return out;
}

export function multiply(a: Mat, b: Mat): Mat {
  const out = zeros(a.rows, a.cols);
  for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i] * b.data[i];
  return out;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** y = x W^T + b, with W stored [out, in] as in PyTorch's nn.Linear. */
export function linear(x: Mat, weight: Tensor64, bias?: Tensor64): Mat {
  const [outDim, inDim] = weight.shape;
  if (inDim !== x.cols) throw new Error(`linear: input has ${x.cols} features, weight expects ${inDim}`);
  const out = zeros(x.rows, outDim);
  for (let t = 0; t < x.rows; t++) {
    const xr = row(x, t);
    for (let o = 0; o < outDim; o++) {
      out.data[t * outDim + o] = dot(xr, weight.data.subarray(o * inDim, (o + 1) * inDim), inDim) + (bias ? bias.data[o] : 0);
    }
  }
  return out;
}

export function layerNorm(x: Mat, gain: Tensor64, bias: Tensor64, eps: number): Mat {
  const out = zeros(x.rows, x.cols);
  for (let t = 0; t < x.rows; t++) {
    const xr = row(x, t);
    const mean = xr.reduce((s, v) => s + v, 0) / x.cols;
    const variance = xr.reduce((s, v) => s + (v - mean) ** 2, 0) / x.cols;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < x.cols; i++) out.data[t * x.cols + i] = (xr[i] - mean) * inv * gain.data[i] + bias.data[i];
  }
  return out;
}

export function rmsNorm(x: Mat, gain: Tensor64, eps: number): Mat {
  const out = zeros(x.rows, x.cols);
  for (let t = 0; t < x.rows; t++) {
    const xr = row(x, t);
    const inv = 1 / Math.sqrt(dot(xr, xr) / x.cols + eps);
    for (let i = 0; i < x.cols; i++) out.data[t * x.cols + i] = xr[i] * inv * gain.data[i];
  }
  return out;
}

/** Softmax in place over values[start .. start+length). */
export function softmaxInPlace(values: Float64Array, start = 0, length = values.length - start): void {
  let max = -Infinity;
  for (let i = start; i < start + length; i++) max = Math.max(max, values[i]);
  let sum = 0;
  for (let i = start; i < start + length; i++) {
    values[i] = Math.exp(values[i] - max);
    sum += values[i];
  }
  for (let i = start; i < start + length; i++) values[i] /= sum;
}

// ---- activations ----

/** erf to float64 accuracy: Taylor series near 0, continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up
  let fraction = ax;
  for (let k = 60; k >= 1; k--) fraction = ax + k / 2 / fraction;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / fraction;
  return Math.sign(x) * (1 - erfc);
}

/** GELU, exact (erf) form: transformers' "gelu", used by the LLaVA projector. */
export const geluErf = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
/** CLIP's quick_gelu. */
export const quickGelu = (x: number): number => x / (1 + Math.exp(-1.702 * x));
/** Llama's SwiGLU gate activation. */
export const silu = (x: number): number => x / (1 + Math.exp(-x));

export const ACTIVATIONS: Record<string, (x: number) => number> = { gelu: geluErf, quick_gelu: quickGelu, silu };

// ---- rotary position embedding ----

/**
 * Applies RoPE in place to one head vector (length headDim) at `position`, HF's rotate_half
 * convention: pairs are (i, i + headDim/2), frequency theta^(-2i/headDim).
 */
export function applyRope(head: Float64Array, position: number, theta: number): void {
  const half = head.length / 2;
  for (let i = 0; i < half; i++) {
    const angle = position * theta ** ((-2 * i) / head.length);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const a = head[i];
    const b = head[i + half];
    head[i] = a * cos - b * sin;
    head[i + half] = b * cos + a * sin;
  }
}

/** Applies RoPE to every head of every row of a [S, heads*headDim] projection, row t at positions[t]. */
export function ropeRows(x: Mat, heads: number, positions: ArrayLike<number>, theta: number): Mat {
  const out: Mat = { rows: x.rows, cols: x.cols, data: x.data.slice() };
  const headDim = x.cols / heads;
  for (let t = 0; t < x.rows; t++) {
    for (let h = 0; h < heads; h++) {
      const start = t * x.cols + h * headDim;
      applyRope(out.data.subarray(start, start + headDim), positions[t], theta);
    }
  }
  return out;
}

// ---- attention ----

/**
 * Attention probabilities [heads][queries][keys] (flattened), softmax(q k^T / sqrt(headDim)) per
 * head over the keys each query may see. Query head h reads KV head floor(h / (heads / kvHeads)).
 * Masked keys get probability 0.
 */
export function attentionProbs(
  q: Mat,
  k: Mat,
  heads: number,
  kvHeads: number,
  canSee: (query: number, key: number) => boolean,
): Float64Array {
  const headDim = q.cols / heads;
  const group = heads / kvHeads;
  const probs = new Float64Array(heads * q.rows * k.rows);
  const scale = 1 / Math.sqrt(headDim);
  for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < q.rows; i++) {
      const base = (h * q.rows + i) * k.rows;
      const qi = q.data.subarray(i * q.cols + h * headDim, i * q.cols + (h + 1) * headDim);
      for (let j = 0; j < k.rows; j++) {
        probs[base + j] = canSee(i, j)
          ? dot(qi, k.data.subarray(j * k.cols + kvh * headDim, j * k.cols + (kvh + 1) * headDim)) * scale
          : -Infinity;
      }
      softmaxInPlace(probs, base, k.rows);
    }
  }
  return probs;
}

/** Weighted sum of values per head: out[i, h] = sum_j probs[h][i][j] * v[j, kvHead(h)]. */
export function attendValues(probs: Float64Array, v: Mat, queries: number, heads: number, kvHeads: number): Mat {
  const headDim = v.cols / kvHeads;
  const group = heads / kvHeads;
  const out = zeros(queries, heads * headDim);
  for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < queries; i++) {
      const base = (h * queries + i) * v.rows;
      const target = out.data.subarray(i * out.cols + h * headDim, i * out.cols + (h + 1) * headDim);
      for (let j = 0; j < v.rows; j++) {
        const p = probs[base + j];
        if (p === 0) continue;
        const vj = v.data.subarray(j * v.cols + kvh * headDim, j * v.cols + (kvh + 1) * headDim);
        for (let d = 0; d < headDim; d++) target[d] += p * vj[d];
      }
    }
  }
  return out;
}
