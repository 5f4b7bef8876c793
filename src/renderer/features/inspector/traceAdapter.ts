import { visualTokensAt, type Trace } from '../../../shared/trace.js';
import type { PruneStepView, TraceView } from './traceView.js';

/** The one place that reads the trace schema (src/shared/trace.ts) for the inspector. */
export function traceToView(trace: Trace, resizePolicy: TraceView['resizePolicy'] = 'pad'): TraceView {
  const n = trace.prompt.visualTokens;
  const grid = trace.image?.grid ?? squareGrid(n);
  const visualCounts = trace.layers.map((l) => l.visualIn);
  const layerCost = paperLayerCost(trace);
  return {
    method: trace.method.label,
    answer: trace.totals.answer,
    numLayers: trace.model.numLayers,
    grid,
    resizePolicy,
    modelResolution: trace.image?.modelWidth ?? 0,
    visualCounts,
    layerTflops: visualCounts.map((count) => layerCost(count) / 1e12),
    layerTflopsUnpruned: visualCounts.map(() => layerCost(n) / 1e12),
    steps: trace.layers.filter((l) => l.kept).map((l) => pruneStep(trace, l, n)),
  };
}

function pruneStep(trace: Trace, layer: Trace['layers'][number], n: number): PruneStepView {
  // Per-token arrays follow the layer's visual block; `tokens` names their grid indices.
  const tokens = layer.tokens ?? visualTokensAt(trace, layer.layer);
  const byPatch = (values: number[] | undefined) => {
    if (!values) return undefined;
    const out: (number | null)[] = new Array(n).fill(null);
    tokens.forEach((patch, i) => (out[patch] = values[i]));
    return out;
  };
  return {
    layer: layer.layer - 1,
    before: layer.visualIn,
    kept: layer.kept!,
    scores: { ttv: byPatch(layer.scores?.ttv), iga: byPatch(layer.scores?.attention), combined: byPatch(layer.scores?.score) },
  };
}

/**
 * Per-layer cost in the paper's convention (Eq. 7, visual tokens only): f(n) = a·n + b·n² with
 * b = 2d from the attention scores. The trace carries d and the unpruned total L·f(N), which fixes
 * a = 4d² + 3dm without needing the MLP width; the pruned total then follows as a check.
 */
function paperLayerCost(trace: Trace): (n: number) => number {
  const n = trace.prompt.visualTokens;
  const layers = trace.model.numLayers;
  if (n === 0) return () => 0;
  const b = 2 * trace.model.hidden;
  const a = trace.totals.flops.paperUnpruned / (layers * n) - b * n;
  return (count) => a * count + b * count * count;
}

function squareGrid(n: number): { rows: number; cols: number } {
  const side = Math.round(Math.sqrt(n));
  return side * side === n ? { rows: side, cols: side } : { rows: 1, cols: n };
}
