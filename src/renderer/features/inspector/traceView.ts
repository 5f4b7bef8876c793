import type { LlmMethodSpec } from '../../../shared/pruning.js';
/**
 * What the inspector draws, derived from a pruning trace. The inspector only ever reads this shape;
 * `traceToView` (traceAdapter.ts) is the one place that knows the trace schema.
 * Layers are 0-based here and shown 1-based in the UI, as in the paper.
 */

/** LLaVA-1.5 pads an image to a square with CLIP's mean colour (image_mean × 255); the overlay shows it the same way. */
export const PAD_COLOUR = 'rgb(122 116 104)';

export type MethodKind = LlmMethodSpec['kind'];

export type ScoreKind = 'ttv' | 'iga' | 'combined';
export const SCORE_KINDS: readonly ScoreKind[] = ['ttv', 'iga', 'combined'];

/**
 * How the scores of a method are named: TransPrune's TTV, IGA and combined score; FastV and PDrop rank by
 * the attention the prompt's last token pays to each image token.
 */
export function scoreNames(kind: MethodKind): Record<ScoreKind, { short: string; title: string }> {
  const attention = kind === 'transprune' ? { short: 'IGA', title: 'IGA' } : { short: 'attention', title: 'Last-token attention' };
  return { ttv: { short: 'TTV', title: 'Accumulated TTV' }, iga: attention, combined: { short: 'combined', title: 'Combined score' } };
}

/** One pruning event: after `layer` ran, `kept.length` of the `before` visual tokens stayed. */
export interface PruneStepView {
  layer: number;
  before: number;
  /** Original patch indices that stayed, ascending. */
  kept: number[];
  /** Scores by original patch index; null for patches no longer in the sequence at this step. */
  scores: Partial<Record<ScoreKind, (number | null)[]>>;
}

/** A rectangle as fractions of the original image's width and height (may reach past 0..1 where a view is padding). */
export interface FractionRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Where a LLaVA-NeXT visual token comes from: a patch of the base view or of a tile (its footprint), or a row's newline. */
export interface TokenPlace {
  kind: 'base' | 'tile' | 'newline' | 'cls';
  /** Index into `TiledLayout.tiles` (0 = the base view). */
  tile: number;
  /** Cell in its view's grid (a newline: the row it ends, col = the grid's column count). */
  row: number;
  col: number;
  /** The patch's footprint; a newline: the strip of its row (height only, x = 1). */
  rect: FractionRect;
  /** The base view's grid cell its centre lies in (null for a newline or the class token). */
  cell: number | null;
}

/** LLaVA-NeXT's several views: the base view (the whole image) and the tiles cut from the AnyRes canvas. */
export interface TiledLayout {
  imageWidth: number;
  imageHeight: number;
  tiles: { kind: 'base' | 'tile'; row: number; col: number; rect: FractionRect }[];
  /** One per visual token, by original index. */
  tokens: TokenPlace[];
}

export interface TraceView {
  method: string;
  /** Which kind of method ran (what the inspector explains and how it names the scores). */
  methodKind: MethodKind;
  /** Whether tokens were also selected before the language model (DivPrune on the projector's output). */
  projectorPruned: boolean;
  /** The answer this trace belongs to. */
  answer: string;
  numLayers: number;
  /** The (base) view's patch grid; for one view, rows * cols = the visual token count. */
  grid: { rows: number; cols: number };
  /** Visual tokens out of the vision tower (N). */
  visualTokens: number;
  /** Present when the image was encoded as several views (LLaVA-NeXT): tokens are then placed by it, not by the grid. */
  layout?: TiledLayout;
  /** How the image was fitted to the model's square input: shown and used to place the overlay. */
  resizePolicy: 'pad' | 'crop' | 'stretch';
  modelResolution: number;
  /** Visual tokens entering each decoder layer (length numLayers). */
  visualCounts: number[];
  /** Prefill TFLOPs of the answer and of an unpruned prefill, in the paper's convention (the chat stats' figure). */
  tflops: number;
  tflopsUnpruned: number;
  /** Prefill TFLOPs spent in each decoder layer (length numLayers). */
  layerTflops: number[];
  /** Same, had nothing been pruned. */
  layerTflopsUnpruned: number[];
  steps: PruneStepView[];
}

/** Layer after which each original patch was dropped; null when it stayed to the end. */
export function droppedAfter(view: TraceView): (number | null)[] {
  const result: (number | null)[] = new Array(view.visualTokens).fill(null);
  const present = new Set(result.keys());
  for (const step of view.steps) {
    const kept = new Set(step.kept);
    for (const patch of present) {
      if (kept.has(patch)) continue;
      result[patch] = step.layer;
      present.delete(patch);
    }
  }
  return result;
}

/** Whether each patch is still in the sequence as input to `layer`. */
export function presentAt(dropped: (number | null)[], layer: number): boolean[] {
  return dropped.map((d) => d === null || d >= layer);
}

/**
 * How many kept patches fall in each row and each column of the grid (the positional-bias view). With
 * several views, each patch counts in the base-grid cell its centre lies in; newlines do not count.
 */
export function positionHistogram(view: TraceView, present: boolean[]): { rows: number[]; cols: number[] } {
  const rows = new Array<number>(view.grid.rows).fill(0);
  const cols = new Array<number>(view.grid.cols).fill(0);
  present.forEach((isPresent, patch) => {
    const cell = view.layout ? view.layout.tokens[patch].cell : patch;
    if (!isPresent || cell === null) return;
    rows[Math.floor(cell / view.grid.cols)] += 1;
    cols[cell % view.grid.cols] += 1;
  });
  return { rows, cols };
}

/** How the inspector names a visual token: its grid cell, or its view and cell (or row, for a newline). */
export function describeToken(view: TraceView, patch: number): string {
  const place = view.layout?.tokens[patch];
  if (!place) return `Patch ${patch} (row ${Math.floor(patch / view.grid.cols) + 1}, column ${(patch % view.grid.cols) + 1})`;
  if (place.kind === 'newline') return `Token ${patch}, the newline after row ${place.row + 1} of tile ${place.tile}`;
  if (place.kind === 'cls') return `Token ${patch}, the class token`;
  const where = place.kind === 'base' ? 'base view' : `tile ${place.tile}`;
  return `Token ${patch} (${where}, row ${place.row + 1}, column ${place.col + 1})`;
}

/** A score with its place among the tokens scored at the same step: rank 1 is the highest. */
export interface RankedScore {
  value: number;
  rank: number;
  of: number;
}

/** The scores a patch had at each pruning step it took part in, each with its rank there, for the hover card. */
export function patchScores(view: TraceView, patch: number): { layer: number; scores: Partial<Record<ScoreKind, RankedScore>> }[] {
  return view.steps.flatMap((step) => {
    const scores: Partial<Record<ScoreKind, RankedScore>> = {};
    for (const kind of SCORE_KINDS) {
      const values = step.scores[kind];
      const value = values?.[patch];
      if (value === null || value === undefined) continue;
      const present = values!.filter((v): v is number => v !== null);
      scores[kind] = { value, rank: present.filter((v) => v > value).length + 1, of: present.length };
    }
    return Object.keys(scores).length ? [{ layer: step.layer, scores }] : [];
  });
}
