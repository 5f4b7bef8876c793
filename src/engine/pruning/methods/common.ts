import type { MethodRecorder } from '../method-recorder.js';
import type { LayerBoundary } from '../types.js';

/** Helpers the in-LLM methods share: probing with its FLOPs recorded, timing a scoring step, and mapping kept tokens to the grid. */

/**
 * The next layer's attention on this layer's output (probe_{b.layer + 1}: its norm, q/k and RoPE), for the
 * queries `queryStart..seqLen-1`; recorded, since the full FLOPs count charges every probe.
 */
export function probeAttention(b: LayerBoundary, queryStart: number, recorder?: MethodRecorder): Promise<Float32Array> {
  recorder?.probe(b.layer, b.seqLen - queryStart);
  return b.probe(b.layer + 1, queryStart);
}

/** Times an async scoring step into the recorder. */
export async function timed<T>(recorder: MethodRecorder | undefined, work: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await work();
  } finally {
    recorder?.addScoringTime(performance.now() - t);
  }
}

/** Original grid indices of the kept tokens. */
export function keptOriginal(b: LayerBoundary, kept: Int32Array): Int32Array {
  return Int32Array.from(kept, (k) => b.keptOriginal[k]);
}
