/** Normalization, combination and top-k selection shared by every scoring method (float64). */

/** The released code's epsilon in the L1 normalizations (method spec §2.3, §3.2). */
export const NORM_EPS = 1e-8;

/** x / (sum(x) + 1e-8): L1 normalization over the current visual tokens (inputs are >= 0). */
export function l1Normalize(x: ArrayLike<number>): Float64Array {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i];
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / (sum + NORM_EPS);
  return out;
}

/** alpha * ttv + (1 - alpha) * iga, both already L1-normalized (spec §4.1). */
export function combineScores(ttvHat: Float64Array, igaHat: Float64Array, alpha: number): Float64Array {
  if (ttvHat.length !== igaHat.length) throw new Error(`score length mismatch: ${ttvHat.length} vs ${igaHat.length}`);
  const out = new Float64Array(ttvHat.length);
  for (let i = 0; i < out.length; i++) out[i] = alpha * ttvHat[i] + (1 - alpha) * igaHat[i];
  return out;
}

/**
 * Indices of the k highest scores, returned in ascending index order (raster order, spec §4.2).
 * Tie rule: among equal scores the lower index wins, so the result is deterministic. (torch.topk
 * does not document its tie order; on CPU it usually also prefers the lower index.) NaN ranks
 * below every number, so a degenerate token is never preferred.
 */
export function topkSorted(scores: ArrayLike<number>, k: number): Int32Array {
  if (k < 0 || k > scores.length) throw new Error(`cannot keep ${k} of ${scores.length} tokens`);
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Infinity : scores[i]);
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => {
    const ka = key(a),
      kb = key(b);
    return ka === kb ? a - b : kb > ka ? 1 : -1;
  });
  return Int32Array.from(order.slice(0, k)).sort();
}

/** Gather `values` at `indices` (re-indexing a per-token store after a prune). */
export function gather<T extends Float64Array | Int32Array>(values: T, indices: Int32Array): T {
  const out = new (values.constructor as { new (n: number): T })(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = values[indices[i]];
  return out;
}
