import type { MethodSpec, PruningOverrides } from '../../shared/pruning.js';

/**
 * The runtime <-> pruning seam (docs/architecture.md). The runtime runs prefill layer by layer and,
 * after each layer, hands the active method a LayerBoundary; the method may answer with the visual
 * tokens to keep. `layer` is 0-BASED (the runtime's and the graphs' numbering); schedules, specs and
 * traces count 1-based, as `layerNumber` does.
 */

/** Per-token side outputs of one decoder layer (method spec §1), each [seqLen]. */
export interface SideOutputs {
  attnRatio: Float32Array; // ||a_out|| / ||a_in||
  attnCos: Float32Array; //   cos(a_in, a_out)
  mlpRatio: Float32Array;
  mlpCos: Float32Array;
}

export interface LayerBoundary {
  layer: number; // 0-based index of the layer just run
  layerNumber: number; // the same layer 1-based (layer + 1), as schedules number it
  numLayers: number;
  originalVisualCount: number; // N from the vision tower
  entryVisualCount: number; // visual tokens entering the LLM (N, or what a projector-side method kept): what keep ratios apply to
  visualStart: number; // index of the first visual token in the current sequence
  visualCount: number; // visual tokens currently in the sequence (one contiguous block)
  /** Tokens between the visual block and the instruction (Qwen's <|vision_end|>): IGA's queries start after them. */
  markersAfterVisual?: number;
  seqLen: number;
  keptOriginal: Int32Array; // original grid index of each current visual token
  side?: SideOutputs; // present when method.wantsSideOutputs(layer) was true
  /** probe_{layerIndex} (0-based) on the hidden states the layer just produced: attention [seqLen]. */
  probe(layerIndex: number, queryStart: number): Promise<Float32Array>;
}

export interface PruningMethod {
  readonly spec: MethodSpec;
  /** Projector-side selection (DivPrune): sorted indices of the N vision features to keep. */
  selectBeforeLLM?(features: Float32Array, n: number, dim: number): Int32Array | null;
  wantsSideOutputs(layer: number): boolean;
  /** Kept indices into the current visual block, ascending; null = no prune after this layer. */
  afterLayer(b: LayerBoundary): Promise<Int32Array | null>;
}

/** What createMethod needs to know about the model. */
export interface ModelDims {
  numLayers: number;
  /** The pack manifest's optional `pruning` overrides. */
  pruning?: PruningOverrides;
}
