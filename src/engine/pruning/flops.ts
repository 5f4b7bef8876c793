import {
  type MethodSpec,
  type PruningOverrides,
  planStages,
  projectorKeep,
  resolveSchedule,
  visualCountsPerLayer,
  pdropLayers,
} from '../../shared/pruning.js';

/**
 * FLOPs of one prefill, in two conventions, both computed from per-layer token counts.
 *
 * PAPER (TransPrune Eq. 7 as the paper evaluates it, method spec §6.1): multiply-accumulates of the
 * decoder layers with n = VISUAL tokens only, per layer 4nd² + 2n²d + 3ndm; text tokens, vision
 * tower, projector, LM head and the TTV/IGA overheads are dropped. Reproduces 3.82 / 1.56 / ... .
 *
 * FULL: real floating-point operations (2 per multiply-accumulate) of everything the prefill computes
 * with matrix products: the vision tower up to the selected layer, the projector, every decoder layer
 * over ALL tokens (GQA-aware k/v projections, dense S×S attention as the graphs compute it, SwiGLU),
 * the LM head for the last token, and the pruning overheads: TTV side outputs (3 dot products per token
 * and module), probes (k projections of the tokens the next layer drops, since it reuses the kept ones'
 * rows; q and logits for the query rows) and DivPrune's Gram matrix. Element-wise work (norms, softmax, RoPE, activations) is left out: well under 1%.
 */

export interface DecoderDims {
  numLayers: number;
  hidden: number;
  intermediate: number;
  numHeads: number;
  numKvHeads: number;
  vocab: number;
}
export interface VisionDims {
  layers: number; // layers run (up to the selected feature layer)
  hidden: number;
  intermediate: number;
  patchSize: number;
  tokensPerImage: number; // patches + CLS (CLIP), patches (Qwen2.5 ViT)
  images: number; // crops run through the tower (1 for LLaVA-1.5, 5 for LLaVA-NeXT anyres 2x2)
  /** The Qwen2.5 ViT where it differs from CLIP's shape (absent: CLIP with its CLS token and a two-matrix MLP). */
  qwen?: QwenVisionShape;
}
/** Qwen2.5-VL's tower: no CLS, 2-frame patches, a SwiGLU MLP, window attention outside `fullLayers`, a 2x2 merger as projector. */
export interface QwenVisionShape {
  temporalPatch: number;
  /** Layers with full attention; the others attend within windows of `windowPatches` patches. */
  fullLayers: number;
  windowPatches: number;
  /** Patches per merged token (4): the merger's MLP is (unit * hidden)^2 then (unit * hidden) x d. */
  mergeUnit: number;
}
export interface FlopsModel {
  decoder: DecoderDims;
  vision: VisionDims;
  visualTokens: number;
}

/** Everything the FLOPs counts need about one prefill. Layers are 1-based. */
export interface PrefillShape {
  visualPerLayer: number[]; // visual tokens entering decoder layer l (index l-1)
  textTokens: number; // non-visual prompt tokens
  seqPerLayer?: number[]; // sequence length each layer ran on, as recorded (0: it never ran); default textTokens + visual
  visionTokens: number; // N out of the vision tower, before any projector-side selection
  ttvLayers: number[]; // layers whose side outputs fed TTV
  probes: { afterLayer: number; queries: number }[]; // attention probes run on layer afterLayer's output
  diversity: boolean; // DivPrune's pairwise cosine matrix over the N projector features
}

export interface FullFlops {
  vision: number;
  projector: number;
  decoder: number;
  head: number;
  overhead: number;
  total: number;
  /** Each decoder layer's share of `decoder` and `overhead`: the layer over its tokens and the scoring run on its output (TTV, probes). */
  layers: number[];
}

/** Eq. 7 for one decoder layer with `n` visual tokens: 4nd² + 2n²d + 3ndm multiply-accumulates. */
export function paperLayerFlops(n: number, d: number, m: number): number {
  return 4 * n * d * d + 2 * n * n * d + 3 * n * d * m;
}

export function paperFlops(visualPerLayer: number[], d: number, m: number): number {
  return visualPerLayer.reduce((sum, n) => sum + paperLayerFlops(n, d, m), 0);
}

export function fullFlops(shape: PrefillShape, model: FlopsModel): FullFlops {
  const { decoder: dec, vision: vis } = model;
  const d = dec.hidden;
  const kvDim = (d / dec.numHeads) * dec.numKvHeads;
  if (shape.visualPerLayer.length !== dec.numLayers)
    throw new Error(`${shape.visualPerLayer.length} per-layer counts for a ${dec.numLayers}-layer model`);
  const seq = (layer: number) => shape.seqPerLayer?.[layer - 1] ?? shape.textTokens + shape.visualPerLayer[layer - 1];

  const { vision, projector } = vis.qwen
    ? qwenVisionMacs(vis, vis.qwen, shape.visionTokens, d)
    : clipVisionMacs(vis, shape.visionTokens, d);

  // Multiply-accumulates per decoder layer (index l-1): the layer itself, then the scoring on its output.
  const layerMacs = Array.from({ length: dec.numLayers }, (_, i) => {
    const s = seq(i + 1);
    return s * (2 * d * d + 2 * d * kvDim + 3 * d * dec.intermediate) + 2 * s * s * d;
  });
  const decoder = layerMacs.reduce((a, b) => a + b, 0);
  const scoring = new Array<number>(dec.numLayers).fill(0);
  for (const l of shape.ttvLayers) scoring[l - 1] += 2 * 3 * seq(l) * d;
  // A probe projects k for every token but q only for its query rows (the probe graph slices first). The layer
  // it probes, the next one (probeAttention), takes the k rows of the tokens it keeps, so only the dropped
  // tokens' k is scoring work; after the last layer there would be no next layer to take any.
  for (const p of shape.probes) {
    const s = seq(p.afterLayer);
    const kept = p.afterLayer < dec.numLayers ? seq(p.afterLayer + 1) : 0;
    scoring[p.afterLayer - 1] += (s - kept) * d * kvDim + p.queries * (d * d + s * d);
  }
  const head = d * dec.vocab;
  const overhead = scoring.reduce((a, b) => a + b, 0) + (shape.diversity ? shape.visionTokens ** 2 * d : 0);

  const macs = { vision, projector, decoder, head, overhead };
  const flops = Object.fromEntries(Object.entries(macs).map(([k, v]) => [k, 2 * v])) as Omit<FullFlops, 'total' | 'layers'>;
  const layers = layerMacs.map((macs, i) => 2 * (macs + scoring[i]));
  return { ...flops, total: Object.values(flops).reduce((a, b) => a + b, 0), layers };
}

/** CLIP tower (with CLS) and LLaVA's two-layer projector, in multiply-accumulates. */
function clipVisionMacs(vis: VisionDims, visionTokens: number, d: number): { vision: number; projector: number } {
  const visionLayer =
    vis.tokensPerImage * (4 * vis.hidden ** 2 + 2 * vis.intermediate * vis.hidden) + 2 * vis.tokensPerImage ** 2 * vis.hidden;
  const patchEmbed = (vis.tokensPerImage - 1) * 3 * vis.patchSize ** 2 * vis.hidden;
  return { vision: vis.images * (vis.layers * visionLayer + patchEmbed), projector: visionTokens * (vis.hidden * d + d * d) };
}

/** The Qwen2.5 ViT (window attention in all but its full-attention layers) and its patch merger, in multiply-accumulates. */
function qwenVisionMacs(vis: VisionDims, q: QwenVisionShape, visionTokens: number, d: number): { vision: number; projector: number } {
  const P = vis.tokensPerImage;
  const dense = P * (4 * vis.hidden ** 2 + 3 * vis.intermediate * vis.hidden);
  const attention = (span: number) => 2 * P * span * vis.hidden;
  const windowLayers = vis.layers - q.fullLayers;
  const layers = vis.layers * dense + q.fullLayers * attention(P) + windowLayers * attention(Math.min(P, q.windowPatches));
  const patchEmbed = P * 3 * q.temporalPatch * vis.patchSize ** 2 * vis.hidden;
  const merged = q.mergeUnit * vis.hidden;
  return { vision: vis.images * (layers + patchEmbed), projector: visionTokens * (merged * merged + merged * d) };
}

/**
 * The prefill shape a method will produce, predicted from its spec (no model run): used by
 * `cli flops`, the benchmark and compare. `instructionTokens` are the tokens after the visual block.
 */
export function planPrefill(
  spec: MethodSpec,
  model: FlopsModel,
  prompt: { textTokens: number; instructionTokens: number },
  overrides?: PruningOverrides,
): PrefillShape {
  const L = model.decoder.numLayers;
  const nLlm = projectorKeep(spec, model.visualTokens);
  const stages = planStages(spec.llm, L, nLlm, overrides);
  const { ttvLayers, probes } = scoringWork(spec, L, prompt.instructionTokens, overrides);
  return {
    visualPerLayer: visualCountsPerLayer(stages, L, nLlm),
    textTokens: prompt.textTokens,
    visionTokens: model.visualTokens,
    ttvLayers,
    probes,
    diversity: spec.projector !== undefined,
  };
}

/** Which layers a method reads side outputs from and where it runs attention probes. */
export function scoringWork(
  spec: MethodSpec,
  numLayers: number,
  instructionTokens: number,
  overrides?: PruningOverrides,
): Pick<PrefillShape, 'ttvLayers' | 'probes'> {
  const llm = spec.llm;
  switch (llm.kind) {
    case 'none':
    case 'random':
      return { ttvLayers: [], probes: [] };
    case 'fastv':
      return { ttvLayers: [], probes: [{ afterLayer: llm.k - 1, queries: 1 }] };
    case 'pdrop':
      return { ttvLayers: [], probes: pdropLayers(llm.stages, numLayers).map((afterLayer) => ({ afterLayer, queries: 1 })) };
    case 'transprune': {
      const s = resolveSchedule(llm, numLayers, overrides);
      const lastPrune = s.prune[s.prune.length - 1];
      return {
        ttvLayers: llm.alpha > 0 ? s.accumulate.filter((l) => l <= lastPrune) : [],
        probes: llm.alpha < 1 ? s.prune.map((afterLayer) => ({ afterLayer, queries: instructionTokens })) : [],
      };
    }
  }
}

/** Reference models for `cli flops --preset`. */
export const FLOPS_PRESETS: Record<string, FlopsModel> = {
  'llava-1.5-7b': {
    decoder: { numLayers: 32, hidden: 4096, intermediate: 11008, numHeads: 32, numKvHeads: 32, vocab: 32000 },
    // CLIP ViT-L/14-336 run to the penultimate layer (feature layer -2): 23 of 24 layers.
    vision: { layers: 23, hidden: 1024, intermediate: 4096, patchSize: 14, tokensPerImage: 577, images: 1 },
    visualTokens: 576,
  },
  'llava-next-7b': {
    decoder: { numLayers: 32, hidden: 4096, intermediate: 11008, numHeads: 32, numKvHeads: 32, vocab: 32000 },
    // anyres 2x2 grid + base image; N = 2880 is the paper's nominal count (spec §4.3).
    vision: { layers: 23, hidden: 1024, intermediate: 4096, patchSize: 14, tokensPerImage: 577, images: 5 },
    visualTokens: 2880,
  },
  'qwen2.5-vl-7b': {
    decoder: { numLayers: 28, hidden: 3584, intermediate: 18944, numHeads: 28, numKvHeads: 4, vocab: 152064 },
    // A 1024 x 768 image at the checkpoint's default max_pixels: smart_resize to 1036 x 756, 74 x 54 patches, 37 x 27
    // merged tokens; the ViT's 112 px windows hold 8 x 8 patches, 4 of its 32 blocks attend over the whole image.
    vision: {
      layers: 32,
      hidden: 1280,
      intermediate: 3420,
      patchSize: 14,
      tokensPerImage: 74 * 54,
      images: 1,
      qwen: { temporalPatch: 2, fullLayers: 4, windowPatches: 64, mergeUnit: 4 },
    },
    visualTokens: 37 * 27,
  },
};

/** Tera-units with two decimals, as the paper's tables. */
export function tera(x: number): string {
  return (x / 1e12).toFixed(2);
}
