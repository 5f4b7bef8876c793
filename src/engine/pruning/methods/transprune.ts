import { keepCount, type Schedule, type TransPruneSpec } from '../../../shared/pruning.js';
import { igaFromProbe } from '../iga.js';
import { combineScores, l1Normalize, topkSorted } from '../select.js';
import { layerTtv, TtvAccumulator } from '../ttv.js';
import type { LayerBoundary } from '../types.js';
import { keptOriginal, probeAttention, timed } from './common.js';
import type { MethodRecorder } from '../method-recorder.js';
import type { InLlmMethod } from './in-llm.js';

/**
 * TransPrune (method spec §9): TTV accumulated over the accumulation layers, IGA from the next
 * layer's q/k at each pruning layer, score = α·TTV_hat + (1-α)·IGA_hat, keep the top floor(N·r).
 * α = 1 needs no probe (TTV only), α = 0 no side outputs (IGA only).
 */
export class TransPruneScorer implements InLlmMethod {
  private readonly accumulate: Set<number>;
  private readonly lastPrune: number;
  private store = new TtvAccumulator();

  constructor(
    private readonly spec: TransPruneSpec,
    private readonly schedule: Schedule,
    private readonly recorder?: MethodRecorder,
  ) {
    this.lastPrune = schedule.prune[schedule.prune.length - 1];
    this.accumulate = new Set(spec.alpha > 0 ? schedule.accumulate.filter((l) => l <= this.lastPrune) : []);
  }

  wantsSideOutputs(layer: number): boolean {
    return this.accumulate.has(layer + 1);
  }

  async afterLayer(b: LayerBoundary): Promise<Int32Array | null> {
    if (b.layerNumber === 1) this.store = new TtvAccumulator();
    if (b.visualCount === 0) return null;
    if (this.accumulate.has(b.layerNumber)) this.addTtv(b);
    const stage = this.schedule.prune.indexOf(b.layerNumber);
    if (stage < 0) return null;
    return timed(this.recorder, () => this.prune(b, keepCount(b.entryVisualCount, this.schedule.ratios[stage])));
  }

  private addTtv(b: LayerBoundary): void {
    if (!b.side) throw new Error(`layer ${b.layer}: TransPrune asked for side outputs but got none`);
    const t = performance.now();
    const perLayer = this.store.add(layerTtv(b.side, this.spec.direction), b.visualStart, b.visualCount);
    const visual = (a: Float32Array) => a.subarray(b.visualStart, b.visualStart + b.visualCount);
    const s = b.side;
    this.recorder?.ttv(b.layer, b.keptOriginal, {
      attnRatio: visual(s.attnRatio),
      attnCos: visual(s.attnCos),
      mlpRatio: visual(s.mlpRatio),
      mlpCos: visual(s.mlpCos),
      layer: perLayer,
    });
    this.recorder?.addScoringTime(performance.now() - t);
  }

  private async prune(b: LayerBoundary, keep: number): Promise<Int32Array> {
    const { alpha } = this.spec;
    const ttv = alpha > 0 ? l1Normalize(this.store.current(b.visualCount)) : undefined;
    let iga: Float64Array | undefined;
    if (alpha < 1) {
      // IGA_{p+1}: the next layer's norm + q/k + RoPE on layer p's output; queries = the instruction after the image.
      const queryStart = b.visualStart + b.visualCount + (b.markersAfterVisual ?? 0);
      if (queryStart >= b.seqLen) throw new Error('TransPrune needs instruction tokens after the image for IGA (use alpha=1 for TTV only)');
      const attention = await probeAttention(b, queryStart, this.recorder);
      iga = igaFromProbe(attention, b.visualStart, b.visualCount).normalized;
    }
    const zeros = new Float64Array(b.visualCount);
    const score = combineScores(ttv ?? zeros, iga ?? zeros, alpha);
    const kept = topkSorted(score, Math.min(keep, b.visualCount));
    this.store.keep(kept);
    this.recorder?.prune(b.layer, b.keptOriginal, { ttv, attention: iga, score }, keptOriginal(b, kept));
    return kept;
  }
}
