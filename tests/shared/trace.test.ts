import { describe, expect, it } from 'vitest';
import { baseCell, layerPaperFlops, singleViewLayout, tokenRect, Trace, visualTokensAt } from '../../src/shared/trace.js';
import { makeTrace, NEXT_LAYOUT } from '../renderer/features/traceFixture.js';
import { parseMethod } from '../../src/shared/pruning.js';

/** A hand-written 4-layer trace: 8 visual tokens, pruned to 4 after layer 2 and to 2 after layer 3. */
function sample(): Trace {
  const perToken = (n: number) => Array.from({ length: n }, (_, i) => i / n);
  return {
    version: 2,
    createdAt: '2026-11-24T14:00:00.000Z',
    model: { id: 'tiny', weightsHash: 'sha256:ab', numLayers: 4, hidden: 64 },
    provider: 'cpu',
    image: {
      hash: 'sha256:cd',
      width: 100,
      height: 80,
      modelWidth: 56,
      modelHeight: 56,
      grid: { rows: 2, cols: 4 },
      layout: singleViewLayout({ x: 10, y: 0, width: 80, height: 80 }, { rows: 2, cols: 4 }),
    },
    prompt: { textTokens: 10, visualTokens: 8, instructionTokens: 6, visualStart: 3 },
    method: {
      label: 'transprune-high',
      spec: parseMethod('transprune-high'),
      schedule: { accumulate: [2, 3], prune: [2, 3], ratios: [0.5, 0.25] },
    },
    layers: [
      { layer: 1, visualIn: 8, seqLen: 18, timeMs: 1 },
      {
        layer: 2,
        visualIn: 8,
        seqLen: 18,
        timeMs: 1,
        tokens: [0, 1, 2, 3, 4, 5, 6, 7],
        ttv: { attnRatio: perToken(8), attnCos: perToken(8), mlpRatio: perToken(8), mlpCos: perToken(8), layer: perToken(8) },
        scores: { ttv: perToken(8), attention: perToken(8), score: perToken(8) },
        kept: [1, 3, 6, 7],
      },
      { layer: 3, visualIn: 4, seqLen: 14, timeMs: 1, tokens: [1, 3, 6, 7], scores: { score: perToken(4) }, kept: [3, 7] },
      { layer: 4, visualIn: 2, seqLen: 12, timeMs: 1 },
    ],
    totals: {
      flops: { paper: 1, full: 2, paperUnpruned: 3, fullUnpruned: 4 },
      timesMs: { preprocess: 1, vision: 2, prefill: 3, decode: 4, scoring: 0.1 },
      generatedTokens: 3,
      answer: 'a cat',
    },
  };
}

describe('Trace schema', () => {
  it('accepts a consistent trace and derives the visual tokens entering each layer', () => {
    const t = Trace.parse(sample());
    expect(visualTokensAt(t, 1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(visualTokensAt(t, 3)).toEqual([1, 3, 6, 7]);
    expect(visualTokensAt(t, 4)).toEqual([3, 7]);
  });

  it.each([
    [
      'a stage that is not nested in the previous one',
      (t: Trace) => {
        t.layers[2].kept = [0, 3];
      },
      /subset/,
    ],
    [
      'kept indices out of order',
      (t: Trace) => {
        t.layers[1].kept = [3, 1, 6, 7];
      },
      /increasing/,
    ],
    [
      'a per-token array of the wrong length',
      (t: Trace) => {
        t.layers[1].ttv!.attnCos = [1, 2];
      },
      /attnCos has 2 entries/,
    ],
    [
      'a missing layer record',
      (t: Trace) => {
        t.layers.pop();
      },
      /layer records/,
    ],
    [
      'layers out of order',
      (t: Trace) => {
        [t.layers[0], t.layers[1]] = [t.layers[1], t.layers[0]];
      },
      /expected 1/,
    ],
    [
      'an index beyond N',
      (t: Trace) => {
        t.layers[2].kept = [3, 9];
      },
      /subset|out of range/,
    ],
    [
      'another version',
      (t: Trace) => {
        (t as { version: number }).version = 1;
      },
      /version|expected 2/i,
    ],
    [
      'a negative time',
      (t: Trace) => {
        t.totals.timesMs.decode = -1;
      },
      /decode|>=0|too small/i,
    ],
  ])('rejects %s', (_, corrupt, message) => {
    const t = sample();
    corrupt(t);
    const result = Trace.safeParse(t);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error!.issues)).toMatch(message);
  });
});

describe('per-layer FLOPs', () => {
  /** Eq. 7 (method spec §6.1) for d = 64 and an MLP width of 172, written out. */
  const eq7 = (n: number) => 4 * n * 64 * 64 + 2 * n * n * 64 + 3 * n * 64 * 172;

  /** sample() as the engine writes it: each layer's FLOPs recorded, the totals their sums. */
  function recorded(): Trace {
    const t = sample();
    t.layers.forEach((l, i) => (l.flops = { paper: eq7(l.visualIn), full: 10 * eq7(l.visualIn) + i }));
    const sum = (key: 'paper' | 'full') => t.layers.reduce((s, l) => s + l.flops![key], 0);
    t.totals.flops = { paper: sum('paper'), full: sum('full') + 1e6, paperUnpruned: 4 * eq7(8), fullUnpruned: 4e9 };
    return t;
  }

  it('are read as recorded', () => {
    const t = Trace.parse(recorded());
    expect(layerPaperFlops(t)).toEqual([8, 8, 4, 2].map(eq7));
  });

  it('must add up to the totals, on every layer or none', () => {
    const off = recorded();
    off.totals.flops.paper += 1000;
    expect(JSON.stringify(Trace.safeParse(off).error?.issues)).toMatch(/totals.flops.paper/);
    const short = recorded();
    short.totals.flops.full = 1;
    expect(JSON.stringify(Trace.safeParse(short).error?.issues)).toMatch(/totals.flops.full/);
    const partial = recorded();
    delete partial.layers[2].flops;
    expect(JSON.stringify(Trace.safeParse(partial).error?.issues)).toMatch(/some layer records only/);
  });

  it('are derived for traces written before layers carried them: Eq. 7 of each layer from the unpruned total', () => {
    const t = recorded();
    for (const l of t.layers) delete l.flops;
    const derived = layerPaperFlops(Trace.parse(t));
    derived.forEach((f, i) => expect(f / eq7(t.layers[i].visualIn)).toBeCloseTo(1, 12));
  });
});

describe('visual token footprints', () => {
  // 120 x 60 px: a 2 x 2 base view over the whole image, two 60 px tiles of 2 x 2 patches, a newline per row.
  const image = makeTrace({ rows: 2, cols: 2, layout: NEXT_LAYOUT, image: { width: 120, height: 60 } }).image!;

  it('tokenRect: a patch covers its share of its view; newlines cover nothing', () => {
    expect(tokenRect(image, 3)).toEqual({ x: 60, y: 30, width: 60, height: 30 }); // base view, row 2, column 2
    expect(tokenRect(image, 6)).toEqual({ x: 60, y: 0, width: 30, height: 30 }); // tile 2, row 1, column 1
    expect(tokenRect(image, 8)).toBeNull();
  });

  it('baseCell: where in the base grid a token centre lies, whichever view it came from', () => {
    expect(NEXT_LAYOUT.tokens.kind.map((_, i) => baseCell(image, i))).toEqual([0, 1, 2, 3, 0, 0, 1, 1, null, 2, 2, 3, 3, null]);
  });
});
