/**
 * DivPrune (peer-pruning §2.5), re-implemented from the paper: a greedy solution of the Max-Min
 * Diversity Problem over the projected visual tokens with cosine distance d_ij = 1 - cos(x_i, x_j).
 * First pick: argmax_i min_{j != i} d_ij; then argmax over unpicked i of min_{j in picked} d_ij, until
 * `keep` are picked. Ties go to the lower index (torch.argmax). Returns the picks ascending. float64.
 */
export function divPrune(features: Float32Array, n: number, dim: number, keep: number): Int32Array {
  if (keep >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const distance = cosineDistances(features, n, dim);
  const picked = new Uint8Array(n);
  // minDist[i] = min over the current picks (first round: over all j != i).
  const minDist = new Float64Array(n).fill(Infinity);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (j !== i && distance[i * n + j] < minDist[i]) minDist[i] = distance[i * n + j];
  const out: number[] = [];
  for (let round = 0; round < keep; round++) {
    let best = -1;
    for (let i = 0; i < n; i++) if (!picked[i] && (best < 0 || minDist[i] > minDist[best])) best = i;
    picked[best] = 1;
    out.push(best);
    for (let i = 0; i < n; i++) minDist[i] = round === 0 ? distance[i * n + best] : Math.min(minDist[i], distance[i * n + best]);
  }
  return Int32Array.from(out).sort();
}

/** Pairwise 1 - cos over the rows of a [n, dim] matrix (zero rows count as orthogonal to everything). */
function cosineDistances(features: Float32Array, n: number, dim: number): Float64Array {
  const unit = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let k = 0; k < dim; k++) norm += features[i * dim + k] ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let k = 0; k < dim; k++) unit[i * dim + k] = features[i * dim + k] * inv;
  }
  const distance = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = unit.subarray(i * dim, (i + 1) * dim);
    for (let j = i; j < n; j++) {
      const b = unit.subarray(j * dim, (j + 1) * dim);
      // Four independent partial sums: several times faster in V8 than one serial chain.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 0;
      for (; k + 3 < dim; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
      }
      for (; k < dim; k++) s0 += a[k] * b[k];
      distance[i * n + j] = distance[j * n + i] = 1 - (s0 + s1 + s2 + s3);
    }
  }
  return distance;
}
