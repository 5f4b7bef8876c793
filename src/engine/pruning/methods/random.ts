import { keepCount, type StageRatio } from '../../../shared/pruning.js';
import { mulberry32, type Uniform } from '../../util/mulberry32.js';
import type { LayerBoundary } from '../types.js';
import { keptOriginal } from './common.js';
import type { MethodRecorder } from '../method-recorder.js';
import type { InLlmMethod } from './in-llm.js';

/** Control: at the same stages and counts as a schedule, keep uniformly random visual tokens (seeded). */
export class RandomSelection implements InLlmMethod {
  private next: Uniform = mulberry32(0);

  constructor(
    private readonly stages: readonly StageRatio[],
    private readonly seed: number,
    private readonly recorder?: MethodRecorder,
  ) {}

  wantsSideOutputs(): boolean {
    return false;
  }

  async afterLayer(b: LayerBoundary): Promise<Int32Array | null> {
    if (b.layerNumber === 1) this.next = mulberry32(this.seed);
    const stage = this.stages.find((s) => s.afterLayer === b.layerNumber);
    if (!stage || b.visualCount === 0) return null;
    const keep = keepCount(b.entryVisualCount, stage.ratio);
    const kept = sampleSorted(b.visualCount, Math.min(keep, b.visualCount), this.next);
    this.recorder?.prune(b.layer, b.keptOriginal, {}, keptOriginal(b, kept));
    return kept;
  }
}

/** k distinct indices of 0..n-1, uniformly, ascending (partial Fisher-Yates). */
export function sampleSorted(n: number, k: number, random: Uniform): Int32Array {
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k).sort();
}
