import { baseCell, layerPaperFlops, tokenRect, viewFraming, visualTokensAt, type Trace } from '../../../shared/trace.js';
import type { PruneStepView, ScoreKind, TiledLayout, TraceView } from './traceView.js';

/** The one place that reads the trace schema (src/shared/trace.ts) for the inspector. */
export function traceToView(
  trace: Trace,
  resizePolicy: TraceView['resizePolicy'] = trace.image ? viewFraming(trace.image) : 'pad',
): TraceView {
  const n = trace.prompt.visualTokens;
  const grid = trace.image?.grid ?? squareGrid(n);
  const { flops } = trace.totals;
  // Every unpruned layer runs all N visual tokens, so each costs the same share of the unpruned total.
  const unprunedLayer = flops.paperUnpruned / trace.model.numLayers / 1e12;
  return {
    method: trace.method.label,
    methodKind: trace.method.spec.llm.kind,
    projectorPruned: trace.method.spec.projector !== undefined,
    answer: trace.totals.answer,
    numLayers: trace.model.numLayers,
    grid,
    visualTokens: n,
    ...(trace.image && trace.image.layout.tiles.length > 1 ? { layout: tiledLayout(trace.image) } : {}),
    resizePolicy: coversWholeImage(trace.image) ? 'stretch' : resizePolicy,
    modelResolution: trace.image?.modelWidth ?? 0,
    visualCounts: trace.layers.map((l) => l.visualIn),
    tflops: flops.paper / 1e12,
    tflopsUnpruned: flops.paperUnpruned / 1e12,
    layerTflops: layerPaperFlops(trace).map((f) => f / 1e12),
    layerTflopsUnpruned: trace.layers.map(() => unprunedLayer),
    steps: trace.layers.filter((l) => l.kept).map((l) => pruneStep(trace, l, n)),
  };
}

/**
 * One view over the whole image (Qwen2.5-VL's smart_resize; LLaVA's crop of a square image): the model saw all of it,
 * resized to its token grid, so the grid is drawn over the image stretched to the grid's shape.
 */
function coversWholeImage(image: Trace['image']): boolean {
  const tiles = image?.layout.tiles ?? [];
  if (!image || tiles.length !== 1) return false;
  const { rect } = tiles[0];
  return rect.x === 0 && rect.y === 0 && rect.width === image.width && rect.height === image.height;
}

/** The trace's layout in fractions of the image, each token with its footprint (or its row's strip, for a newline). */
function tiledLayout(image: NonNullable<Trace['image']>): TiledLayout {
  const fraction = (r: { x: number; y: number; width: number; height: number }) => ({
    x: r.x / image.width,
    y: r.y / image.height,
    width: r.width / image.width,
    height: r.height / image.height,
  });
  const tiles = image.layout.tiles.map((t) => ({ kind: t.kind, row: t.row, col: t.col, rect: fraction(t.rect) }));
  const { kind, tile, row, col } = image.layout.tokens;
  const tokens = kind.map((k, i) => {
    const view = image.layout.tiles[tile[i]];
    const strip = {
      x: image.width,
      y: view.rect.y + (row[i] * view.rect.height) / view.grid.rows,
      width: 0,
      height: view.rect.height / view.grid.rows,
    };
    return { kind: k, tile: tile[i], row: row[i], col: col[i], rect: fraction(tokenRect(image, i) ?? strip), cell: baseCell(image, i) };
  });
  return { imageWidth: image.width, imageHeight: image.height, tiles, tokens };
}

function pruneStep(trace: Trace, layer: Trace['layers'][number], n: number): PruneStepView {
  // Per-token arrays follow the layer's visual block; `tokens` names their grid indices.
  const tokens = layer.tokens ?? visualTokensAt(trace, layer.layer);
  const scores: PruneStepView['scores'] = {};
  const add = (kind: ScoreKind, values: number[] | undefined) => {
    if (!values) return;
    const out: (number | null)[] = new Array(n).fill(null);
    tokens.forEach((patch, i) => (out[patch] = values[i]));
    scores[kind] = out;
  };
  add('ttv', layer.scores?.ttv);
  add('iga', layer.scores?.attention);
  // FastV and PDrop record their attention as the score too: only TransPrune's combined score is a score of its own.
  if (trace.method.spec.llm.kind === 'transprune') add('combined', layer.scores?.score);
  return { layer: layer.layer - 1, before: layer.visualIn, kept: layer.kept!, scores };
}

function squareGrid(n: number): { rows: number; cols: number } {
  const side = Math.round(Math.sqrt(n));
  return side * side === n ? { rows: side, cols: side } : { rows: 1, cols: n };
}
