import { projectorKeep, resolveSchedule, resolveStages, type MethodSpec } from '../../shared/pruning.js';
import { LastTokenAttention } from './methods/attention.js';
import type { MethodRecorder } from './method-recorder.js';
import { divPrune } from './methods/divprune.js';
import type { InLlmMethod } from './methods/in-llm.js';
import { RandomSelection } from './methods/random.js';
import { TransPruneScorer } from './methods/transprune.js';
import type { LayerBoundary, ModelDims, PruningMethod } from './types.js';

export type { LayerBoundary, ModelDims, PruningMethod, SideOutputs } from './types.js';

/**
 * Build the PruningMethod for one request: its stages are resolved here, once, against the model. In-LLM
 * keep ratios are fractions of the visual count entering the LLM (`LayerBoundary.entryVisualCount`: N,
 * or what a projector-side method passed on). Methods reset their per-prefill state at layer 1, so one
 * instance can serve several prefills (e.g. turns) in sequence, never concurrently.
 */
export function createMethod(spec: MethodSpec, dims: ModelDims, recorder?: MethodRecorder): PruningMethod {
  const llm = inLlmMethod(spec, dims, recorder);
  const projector = spec.projector;
  return {
    spec,
    selectBeforeLLM: projector
      ? (features, n, dim) => {
          const t = performance.now();
          const kept = divPrune(features, n, dim, projectorKeep(spec, n));
          recorder?.projectorKept(kept);
          recorder?.addScoringTime(performance.now() - t);
          return kept;
        }
      : undefined,
    wantsSideOutputs: (layer) => llm.wantsSideOutputs(layer),
    afterLayer: (b: LayerBoundary) => llm.afterLayer(b),
  };
}

function inLlmMethod(spec: MethodSpec, dims: ModelDims, recorder?: MethodRecorder): InLlmMethod {
  const llm = spec.llm;
  const L = dims.numLayers;
  const stages = resolveStages(llm, L, dims.pruning); // a schedule that does not fit the model fails here, before any layer runs
  switch (llm.kind) {
    case 'none':
      return { wantsSideOutputs: () => false, afterLayer: async () => null };
    case 'transprune': {
      const schedule = resolveSchedule(llm, L, dims.pruning);
      recorder?.schedule(schedule);
      return new TransPruneScorer(llm, schedule, recorder);
    }
    case 'random': {
      recorder?.schedule(resolveSchedule(llm, L, dims.pruning));
      return new RandomSelection(stages, llm.seed, recorder);
    }
    case 'fastv':
      return new LastTokenAttention(stages, 1, recorder);
    case 'pdrop':
      return new LastTokenAttention(stages, 0, recorder);
  }
}
