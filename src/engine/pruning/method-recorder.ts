import type { Schedule } from '../../shared/pruning.js';
import type { ScoreRecord, TtvRecord } from '../../shared/trace.js';

/**
 * What a pruning method reports while it runs: the schedule it resolved, its per-token components and
 * scores, the tokens it kept, the probes it ran and the time it spent scoring. Layers are 0-based (the
 * runtime's numbering). The trace recorder (src/engine/trace) implements it; a method given none reports nothing.
 */
export interface MethodRecorder {
  /** The schedule after depth scaling and overrides. */
  schedule(schedule: Schedule): void;
  /** Projector-side selection: the vision features kept. */
  projectorKept(indices: Int32Array): void;
  /** Per-token TTV components of the visual tokens (`tokens`: their original grid indices). */
  ttv(layer: number, tokens: Int32Array, ttv: { [K in keyof TtvRecord]: ArrayLike<number> }): void;
  /** Scores of a pruning layer and the original grid indices it kept. */
  prune(layer: number, tokens: Int32Array, scores: { [K in keyof ScoreRecord]?: ArrayLike<number> }, keptOriginal: Int32Array): void;
  /** An attention probe run on layer `layer`'s output with `queries` query rows. */
  probe(layer: number, queries: number): void;
  /** Wall time spent scoring (probes included). */
  addScoringTime(ms: number): void;
}
