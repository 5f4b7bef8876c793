import { singleViewLayout, type Trace, type VisualLayout } from '../../../src/shared/trace.js';

export interface FixtureOptions {
  rows?: number;
  cols?: number;
  numLayers?: number;
  hidden?: number;
  intermediate?: number;
  /** 1-based layers after which tokens are pruned, with the count kept. */
  stages?: { afterLayer: number; keep: number }[];
  /** Several views (LLaVA-NeXT): the visual tokens are the layout's; `rows`, `cols` are the base view's grid. */
  layout?: VisualLayout;
  image?: { width: number; height: number };
}

/**
 * A LLaVA-NeXT layout written out by hand for a 120 x 60 image: a 2 x 2 base view over the whole image,
 * then two tiles side by side (60 x 60 px each, 2 x 2 patches), nothing unpadded, a newline after each
 * of the 2 canvas rows: 4 + 2 x (4 + 1) = 14 tokens.
 */
export const NEXT_LAYOUT: VisualLayout = {
  tiles: [
    { kind: 'base', row: 0, col: 0, grid: { rows: 2, cols: 2 }, rect: { x: 0, y: 0, width: 120, height: 60 } },
    { kind: 'tile', row: 0, col: 0, grid: { rows: 2, cols: 2 }, rect: { x: 0, y: 0, width: 60, height: 60 } },
    { kind: 'tile', row: 0, col: 1, grid: { rows: 2, cols: 2 }, rect: { x: 60, y: 0, width: 60, height: 60 } },
  ],
  tokens: {
    // base 0-3 | row 0: tile 1 (0,0) (0,1), tile 2 (0,0) (0,1), newline | row 1: the same, newline
    kind: ['base', 'base', 'base', 'base', 'tile', 'tile', 'tile', 'tile', 'newline', 'tile', 'tile', 'tile', 'tile', 'newline'],
    tile: [0, 0, 0, 0, 1, 1, 2, 2, 2, 1, 1, 2, 2, 2],
    row: [0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    col: [0, 1, 0, 1, 0, 1, 0, 1, 2, 0, 1, 0, 1, 2],
  },
};

/** Eq. 7 per layer, written out here independently of the app: 4nd² + 2n²d + 3ndm. */
export const paperLayerMacs = (n: number, d: number, m: number) => 4 * n * d * d + 2 * n * n * d + 3 * n * d * m;

/**
 * A pruning trace following src/shared/trace.ts, made the way TransPrune fills one in: at each
 * pruning layer the tokens in the block get scores (a fixed pseudo-random field) and the top `keep`
 * survive, in ascending grid order.
 */
export function makeTrace({
  rows = 4,
  cols = 4,
  numLayers = 8,
  hidden = 64,
  intermediate = 172,
  stages = [
    { afterLayer: 3, keep: 12 },
    { afterLayer: 5, keep: 6 },
  ],
  layout,
  image = { width: 640, height: 480 },
}: FixtureOptions = {}): Trace {
  const n = layout ? layout.tokens.kind.length : rows * cols;
  let block = Array.from({ length: n }, (_, i) => i);
  const field = (patch: number, layer: number) => ((patch * 7919 + layer * 104729) % 97) / 97;
  const layers: Trace['layers'] = [];
  for (let layer = 1; layer <= numLayers; layer++) {
    const stage = stages.find((s) => s.afterLayer === layer);
    const record: Trace['layers'][number] = { layer, visualIn: block.length, seqLen: 10 + block.length, timeMs: 1 + block.length / 10 };
    if (stage) {
      const score = block.map((p) => field(p, layer));
      const ttv = score.map((s) => s / 2);
      const attention = score.map((s, i) => s - ttv[i]);
      const order = block.map((_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
      const kept = order
        .slice(0, stage.keep)
        .map((i) => block[i])
        .sort((a, b) => a - b);
      Object.assign(record, { tokens: block, scores: { ttv, attention, score }, kept });
      block = kept;
    }
    layers.push(record);
  }
  const paper = layers.reduce((sum, l) => sum + paperLayerMacs(l.visualIn, hidden, intermediate), 0);
  const paperUnpruned = numLayers * paperLayerMacs(n, hidden, intermediate);
  return {
    version: 2,
    createdAt: '2026-11-24T12:00:00.000Z',
    model: { id: 'tiny-llava', weightsHash: 'f'.repeat(64), numLayers, hidden },
    provider: 'cpu',
    image: {
      hash: 'a'.repeat(64),
      ...image,
      modelWidth: 336,
      modelHeight: 336,
      grid: { rows, cols },
      layout: layout ?? singleViewLayout({ x: 80, y: 0, width: 480, height: 480 }, { rows, cols }),
    },
    prompt: { textTokens: 10, visualTokens: n, instructionTokens: 6, visualStart: 4 },
    method: {
      label: 'transprune-high',
      spec: {
        llm: {
          kind: 'transprune',
          preset: 'transprune-high',
          schedule: { accumulate: [3, 4, 5], prune: [3, 5], ratios: [0.75, 0.375] },
          alpha: 0.5,
          direction: 'code',
          positions: 'compact',
        },
      },
    },
    layers,
    totals: {
      flops: { paper, full: 2 * paper, paperUnpruned, fullUnpruned: 2 * paperUnpruned },
      timesMs: { preprocess: 3, vision: 20, prefill: 40, decode: 60, scoring: 2 },
      generatedTokens: 5,
      answer: 'A red square.',
    },
  };
}
