import { keepCount, type StageRatio } from '../../../shared/pruning.js';
import { topkSorted } from '../select.js';
import type { LayerBoundary } from '../types.js';
import { keptOriginal, probeAttention, timed } from './common.js';
import type { MethodRecorder } from '../method-recorder.js';
import type { InLlmMethod } from './in-llm.js';

/**
 * Attention-ranked baselines: the last token's head-mean attention to each visual token, from a probe.
 *
 * PDrop: at each stage boundary p (1-based) the probe uses layer p+1's norm and q/k on layer p's
 * output (PDrop's "boundary layer" in 0-based numbering), then keeps floor(N·λ^s).
 *
 * FastV: FastV ranks by the attention of layer K (1-based; K-1 in its 0-based code) and prunes after
 * layer K. That attention is computed from layer K-1's output, so the probe runs one boundary earlier
 * (`scoreLag` = 1) and the prune waits for the next boundary; nothing changes the sequence in between.
 */
export class LastTokenAttention implements InLlmMethod {
  /** Scores taken at this stage's scoring boundary, waiting for its pruning boundary. */
  private pending: Float64Array | null = null;

  constructor(
    private readonly stages: readonly StageRatio[],
    private readonly scoreLag: 0 | 1,
    private readonly recorder?: MethodRecorder,
  ) {}

  wantsSideOutputs(): boolean {
    return false;
  }

  async afterLayer(b: LayerBoundary): Promise<Int32Array | null> {
    if (b.layerNumber === 1) this.pending = null;
    if (b.visualCount === 0) return null;
    if (this.stages.some((s) => s.afterLayer === b.layerNumber + this.scoreLag))
      this.pending = await timed(this.recorder, () => this.score(b));
    const stage = this.stages.find((s) => s.afterLayer === b.layerNumber);
    if (!stage) return null;
    return timed(this.recorder, async () => this.select(b, keepCount(b.entryVisualCount, stage.ratio)));
  }

  private async score(b: LayerBoundary): Promise<Float64Array> {
    const attention = await probeAttention(b, b.seqLen - 1, this.recorder);
    return Float64Array.from(attention.subarray(b.visualStart, b.visualStart + b.visualCount));
  }

  private select(b: LayerBoundary, keep: number): Int32Array {
    const scores = this.pending;
    if (!scores || scores.length !== b.visualCount) throw new Error(`layer ${b.layer}: no attention scores for this stage`);
    const kept = topkSorted(scores, Math.min(keep, b.visualCount));
    this.recorder?.prune(b.layer, b.keptOriginal, { attention: scores, score: scores }, keptOriginal(b, kept));
    this.pending = null;
    return kept;
  }
}
