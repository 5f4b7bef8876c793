import { describe, expect, it } from 'vitest';
import { layerTtv, moduleTtv, TtvAccumulator } from '../../src/engine/pruning/ttv.js';
import { igaFromProbe } from '../../src/engine/pruning/iga.js';
import { combineScores, l1Normalize, topkSorted } from '../../src/engine/pruning/select.js';

/** Deterministic pseudo-random numbers (xorshift) so the tests need no fixtures. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}
const vec = (n: number, f: () => number) => Float64Array.from({ length: n }, f);

/** Per-token (T_in, T_out) pairs in D dimensions, and their ratio/cos computed directly. */
function pairs(n: number, dim: number, seed: number) {
  const r = rng(seed);
  const toks = Array.from({ length: n }, () => ({ tin: vec(dim, () => r() - 0.5), tout: vec(dim, () => r() - 0.5) }));
  return toks;
}
const norm = (v: Float64Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i], 0);
function sideOf(toks: { tin: Float64Array; tout: Float64Array }[]) {
  return {
    ratio: toks.map((t) => norm(t.tout) / norm(t.tin)),
    cos: toks.map((t) => dot(t.tin, t.tout) / (norm(t.tin) * norm(t.tout))),
  };
}

describe('moduleTtv (method spec §2, §8.8-9)', () => {
  it('matches the definition m_t * exp(1 - cos_t) / Σ_u exp(1 - cos_u) over all tokens', () => {
    const { ratio, cos } = sideOf(pairs(10, 8, 1));
    const z = cos.reduce((s, c) => s + Math.exp(1 - c), 0);
    const got = moduleTtv(ratio, cos, 'code');
    cos.forEach((c, t) => expect(got[t]).toBeCloseTo((ratio[t] * Math.exp(1 - c)) / z, 15));
    const zp = cos.reduce((s, c) => s + Math.exp(1 - Math.abs(c)), 0);
    const paper = moduleTtv(ratio, cos, 'paper');
    cos.forEach((c, t) => expect(paper[t]).toBeCloseTo((ratio[t] * Math.exp(1 - Math.abs(c))) / zp, 15));
  });

  it('keeps softmax weights in [1/Z, e²/Z] (code) and [1/Z, e/Z] (paper), TTV >= 0', () => {
    const n = 50;
    const r = rng(2);
    const cos = vec(n, () => 2 * r() - 1);
    const ones = new Float64Array(n).fill(1);
    for (const [direction, top] of [
      ['code', Math.E ** 2],
      ['paper', Math.E],
    ] as const) {
      const w = moduleTtv(ones, cos, direction);
      const z = cos.reduce((s, c) => s + Math.exp(direction === 'code' ? 1 - c : 1 - Math.abs(c)), 0);
      for (const x of w) {
        expect(x).toBeGreaterThanOrEqual(1 / z - 1e-15);
        expect(x).toBeLessThanOrEqual(top / z + 1e-15);
      }
    }
  });

  it('anti-aligned outputs score highest under the code direction, orthogonal ones under the paper direction', () => {
    const ratio = [1, 1, 1];
    const cos = [1, 0, -1];
    expect(Array.from(topkSorted(moduleTtv(ratio, cos, 'code'), 1))).toEqual([2]);
    expect(Array.from(topkSorted(moduleTtv(ratio, cos, 'paper'), 1))).toEqual([1]);
  });

  it('is scale-aware as §8.9: same-factor scaling changes nothing; scaling outputs by c scales TTV by c', () => {
    const toks = pairs(12, 6, 3);
    const base = sideOf(toks);
    const scaledBoth = sideOf(toks.map((t) => ({ tin: t.tin.map((x) => 3 * x), tout: t.tout.map((x) => 3 * x) })));
    const scaledOut = sideOf(toks.map((t) => ({ tin: t.tin, tout: t.tout.map((x) => 2.5 * x) })));
    const indep = sideOf(toks.map((t, i) => ({ tin: t.tin.map((x) => (i + 1) * x), tout: t.tout.map((x) => 0.5 * x) })));
    const ref = moduleTtv(base.ratio, base.cos, 'code');
    moduleTtv(scaledBoth.ratio, scaledBoth.cos, 'code').forEach((x, i) => expect(x).toBeCloseTo(ref[i], 12));
    moduleTtv(scaledOut.ratio, scaledOut.cos, 'code').forEach((x, i) => expect(x).toBeCloseTo(2.5 * ref[i], 12));
    indep.cos.forEach((c, i) => expect(c).toBeCloseTo(base.cos[i], 12)); // direction ignores independent positive scalings
  });

  it('takes no position input: identical pairs give identical TTV; permuting pairs permutes TTV (§7.2 B, §8.10)', () => {
    const same = moduleTtv(new Array(9).fill(1.7), new Array(9).fill(0.3), 'code');
    for (const x of same) expect(x).toBe(same[0]);
    const { ratio, cos } = sideOf(pairs(20, 5, 4));
    const perm = Array.from({ length: 20 }, (_, i) => (i * 7) % 20);
    const direct = moduleTtv(ratio, cos, 'code');
    const permuted = moduleTtv(
      perm.map((p) => ratio[p]),
      perm.map((p) => cos[p]),
      'code',
    );
    perm.forEach((p, i) => expect(permuted[i]).toBeCloseTo(direct[p], 15));
  });
});

describe('TTV accumulation (§2.3, §8.5)', () => {
  const side = (n: number, seed: number) => {
    const r = rng(seed);
    const f = () => Float32Array.from({ length: n }, () => 0.5 + r());
    const c = () => Float32Array.from({ length: n }, () => 2 * r() - 1);
    return { attnRatio: f(), attnCos: c(), mlpRatio: f(), mlpCos: c() };
  };

  it('sums per-layer TTV of the visual block and re-indexes the store after a prune', () => {
    const [start, n, S] = [3, 8, 15];
    const l7 = layerTtv(side(S, 7), 'code');
    const acc = new TtvAccumulator();
    acc.add(l7, start, n);
    const kept = Int32Array.from([0, 2, 5, 7]);
    acc.keep(kept);
    const S2 = S - n + kept.length;
    const l8 = layerTtv(side(S2, 8), 'code');
    acc.add(l8, start, kept.length);
    const cur = acc.current(kept.length);
    kept.forEach((k, i) => expect(cur[i]).toBe(l7[start + k] + l8[start + i]));
  });

  it('layer TTV is attention TTV + MLP TTV', () => {
    const s = side(6, 9);
    const sum = layerTtv(s, 'paper');
    const a = moduleTtv(s.attnRatio, s.attnCos, 'paper'),
      m = moduleTtv(s.mlpRatio, s.mlpCos, 'paper');
    sum.forEach((x, i) => expect(x).toBe(a[i] + m[i]));
  });
});

describe('IGA, normalization and combination (§3, §4.1, §8.7, §8.11)', () => {
  it('slices the visual block of the probe and L1-normalizes it (raw entries <= 1)', () => {
    const att = Float32Array.from([0.2, 0.1, 0.05, 0.3, 0.15, 0.2]);
    const { raw, normalized } = igaFromProbe(att, 1, 4);
    expect(Array.from(raw)).toEqual(Array.from(att.slice(1, 5)));
    expect(normalized.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 7);
    for (const x of raw) expect(x).toBeLessThanOrEqual(1);
  });

  it('normalized TTV and IGA each sum to 1; the α-score sums to 1', () => {
    const r = rng(11);
    const t = l1Normalize(vec(100, r)),
      g = l1Normalize(vec(100, r));
    expect(t.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 7);
    expect(combineScores(t, g, 0.3).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 7);
  });

  it("α = 1 ranks by TTV only, α = 0 by IGA only, α = 0.5 as the code's TTV_hat + IGA_hat", () => {
    const r = rng(12);
    const t = l1Normalize(vec(64, r)),
      g = l1Normalize(vec(64, r));
    const k = 16;
    expect(topkSorted(combineScores(t, g, 1), k)).toEqual(topkSorted(t, k));
    expect(topkSorted(combineScores(t, g, 0), k)).toEqual(topkSorted(g, k));
    expect(topkSorted(combineScores(t, g, 0.5), k)).toEqual(
      topkSorted(
        t.map((x, i) => x + g[i]),
        k,
      ),
    );
  });
});

describe('topkSorted (§4.2, §8.4, §8.14)', () => {
  it('returns the k largest, ascending; ties go to the lower index; NaN ranks last', () => {
    expect(Array.from(topkSorted([0.1, 0.9, 0.5, 0.9, 0.2], 2))).toEqual([1, 3]);
    expect(Array.from(topkSorted([0.5, 0.5, 0.5, 0.5], 2))).toEqual([0, 1]);
    expect(Array.from(topkSorted([0.3, 0.7, 0.3, 0.1], 2))).toEqual([0, 1]);
    expect(Array.from(topkSorted([NaN, 0, -1], 2))).toEqual([1, 2]);
    expect(Array.from(topkSorted([3, 1, 2], 3))).toEqual([0, 1, 2]); // k = n is the identity
  });

  it('selects the same set under a permutation of the tokens (equivariance)', () => {
    const r = rng(5);
    const s = vec(50, r);
    const perm = Array.from({ length: 50 }, (_, i) => (i * 13) % 50);
    const direct = new Set(topkSorted(s, 20));
    const viaPerm = topkSorted(
      perm.map((p) => s[p]),
      20,
    );
    expect(new Set(Array.from(viaPerm, (i) => perm[i]))).toEqual(direct);
  });

  it('agrees with a brute-force sort on random inputs', () => {
    const r = rng(21);
    for (let trial = 0; trial < 20; trial++) {
      const s = vec(30, () => Math.round(r() * 5)); // many ties
      const k = 1 + Math.floor(r() * 29);
      const brute = s.slice().sort().reverse()[k - 1];
      const got = topkSorted(s, k);
      expect(got.length).toBe(k);
      for (const i of got) expect(s[i]).toBeGreaterThanOrEqual(brute);
      for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1]);
    }
  });
});
