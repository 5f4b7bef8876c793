import type { Direction } from '../../shared/pruning.js';
import type { SideOutputs } from './types.js';
import { gather } from './select.js';

/**
 * Token Transition Variation (method spec §2), in float64.
 * Per module: TTV_t = m_t * softmax_t(dir_t) with m = ||out||/||in|| and dir = 1 - cos (released
 * code) or 1 - |cos| (paper Eq. 2). The softmax runs over ALL S tokens of the layer's sequence
 * (system, visual and text), one softmax per module per layer, exactly as the released code.
 */
export function moduleTtv(ratio: ArrayLike<number>, cos: ArrayLike<number>, direction: Direction): Float64Array {
  const s = ratio.length;
  const dir = new Float64Array(s);
  for (let t = 0; t < s; t++) dir[t] = direction === 'paper' ? 1 - Math.abs(cos[t]) : 1 - cos[t];
  // dir lies in [0, 2]: exp cannot overflow, so the plain softmax (as the code) is exact enough.
  let z = 0;
  for (let t = 0; t < s; t++) z += Math.exp(dir[t]);
  const out = new Float64Array(s);
  for (let t = 0; t < s; t++) out[t] = ratio[t] * (Math.exp(dir[t]) / z);
  return out;
}

/** TTV_l = TTV(attention) + TTV(MLP), for all S tokens of the layer (Eq. 3). */
export function layerTtv(side: SideOutputs, direction: Direction): Float64Array {
  const attn = moduleTtv(side.attnRatio, side.attnCos, direction);
  const mlp = moduleTtv(side.mlpRatio, side.mlpCos, direction);
  for (let t = 0; t < attn.length; t++) attn[t] += mlp[t];
  return attn;
}

/**
 * Accumulated TTV over the visual block (Eq. 4, spec §2.3): the sum of TTV_l over accumulation
 * layers seen so far, restricted to the current visual tokens. After a prune the store is re-indexed
 * to the survivors, so earlier layers keep contributing to later stages. Summation runs in layer
 * order, as Σ over the stored per-layer vectors would.
 */
export class TtvAccumulator {
  private sum: Float64Array | null = null;

  /** Add one layer's TTV, given for the whole sequence; only the visual block is kept. */
  add(ttvAllTokens: Float64Array, visualStart: number, visualCount: number): Float64Array {
    const visual = ttvAllTokens.slice(visualStart, visualStart + visualCount);
    if (this.sum && this.sum.length !== visualCount)
      throw new Error(`TTV store has ${this.sum.length} tokens, the layer has ${visualCount}`);
    if (!this.sum) this.sum = new Float64Array(visualCount);
    for (let t = 0; t < visualCount; t++) this.sum[t] += visual[t];
    return visual;
  }

  /** The accumulated (unnormalized) TTV of the current visual tokens; zeros if no layer was added. */
  current(visualCount: number): Float64Array {
    return this.sum ? this.sum.slice() : new Float64Array(visualCount);
  }

  /** Re-index to the kept tokens (indices into the current visual block). */
  keep(indices: Int32Array): void {
    if (this.sum) this.sum = gather(this.sum, indices);
  }
}
