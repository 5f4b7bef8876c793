import type { LayerBoundary } from '../types.js';

/** The in-LLM half of a PruningMethod (a projector-side method may run before it). */
export interface InLlmMethod {
  wantsSideOutputs(layer: number): boolean;
  afterLayer(b: LayerBoundary): Promise<Int32Array | null>;
}
