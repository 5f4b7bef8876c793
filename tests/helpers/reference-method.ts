// An engine method spec in the pruned reference's terms (tests/helpers/reference-pruned.ts).

import { pdropLayers, positionPolicy, resolveSchedule, type LlmMethodSpec } from '../../src/shared/pruning.js';
import type { ReferenceMethod } from './reference-pruned.js';

/** The same method as plain 1-based layer lists, its schedule scaled to the model's depth and its positions resolved as the engine does. */
export function referenceMethod(llm: LlmMethodSpec, numLayers: number): ReferenceMethod {
  switch (llm.kind) {
    case 'none':
      return { kind: 'none' };
    case 'transprune': {
      const { accumulate, prune, ratios } = resolveSchedule(llm, numLayers);
      return { kind: 'transprune', accumulate, prune, ratios, alpha: llm.alpha, direction: llm.direction, positions: positionPolicy(llm) };
    }
    case 'fastv':
      return { kind: 'fastv', k: llm.k, r: llm.r, positions: positionPolicy(llm) };
    case 'pdrop':
      return { kind: 'pdrop', layers: pdropLayers(llm.stages, numLayers), lambda: llm.lambda, positions: positionPolicy(llm) };
    case 'random':
      throw new Error('random has no reference');
  }
}
