import { describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import { singleViewLayout, type Trace } from '../../src/shared/trace.js';
import { readTrace, traceToJson, traceToLayerCsv, traceToTokenCsv } from '../../src/shared/trace-files.js';

/** 3 layers, a 2x2 grid; layer 2 scores the 4 tokens and keeps grid indices 1 and 3. */
const trace: Trace = {
  version: 2,
  createdAt: '2026-11-24T14:00:00.000Z',
  model: { id: 'tiny', weightsHash: 'sha256:ab', numLayers: 3, hidden: 8 },
  provider: 'cpu',
  image: {
    hash: 'sha256:cd',
    width: 10,
    height: 10,
    modelWidth: 14,
    modelHeight: 14,
    grid: { rows: 2, cols: 2 },
    layout: singleViewLayout({ x: 0, y: 0, width: 10, height: 10 }, { rows: 2, cols: 2 }),
  },
  prompt: { textTokens: 5, visualTokens: 4, instructionTokens: 3, visualStart: 2 },
  method: { label: 'transprune-high', spec: parseMethod('transprune-high') },
  layers: [
    { layer: 1, visualIn: 4, seqLen: 9, timeMs: 1.23456 },
    {
      layer: 2,
      visualIn: 4,
      seqLen: 9,
      timeMs: 2,
      tokens: [0, 1, 2, 3],
      ttv: {
        attnRatio: [1, 2, 3, 4],
        attnCos: [0.1, 0.2, 0.3, 0.4],
        mlpRatio: [5, 6, 7, 8],
        mlpCos: [-0.1, -0.2, -0.3, -0.4],
        layer: [0.5, 0.6, 0.7, 0.8],
      },
      scores: { ttv: [0.1, 0.2, 0.3, 0.4], attention: [0.4, 0.3, 0.2, 0.1], score: [0.25, 0.3, 0.25, 0.3] },
      kept: [1, 3],
    },
    { layer: 3, visualIn: 2, seqLen: 7, timeMs: 1 },
  ],
  totals: {
    flops: { paper: 1, full: 2, paperUnpruned: 3, fullUnpruned: 4 },
    timesMs: { preprocess: 0, vision: 0, prefill: 4, decode: 5, scoring: 0.1 },
    generatedTokens: 2,
    answer: 'yes',
  },
};

describe('trace files', () => {
  it('JSON round-trips through the validating reader', () => {
    expect(readTrace(traceToJson(trace))).toEqual(trace);
  });

  it('per-layer CSV: one row per layer', () => {
    expect(traceToLayerCsv(trace)).toBe('layer,visual_in,seq_len,time_ms,kept_after\n1,4,9,1.235,\n2,4,9,2,2\n3,2,7,1,\n');
  });

  it('per-token CSV: one row per (layer, visual token) where per-token data exists, with grid row/col and kept flags', () => {
    const rows = traceToTokenCsv(trace)
      .trim()
      .split('\n')
      .map((r) => r.split(','));
    expect(rows[0]).toEqual([
      'layer',
      'position',
      'grid_index',
      'grid_row',
      'grid_col',
      'attn_ratio',
      'attn_cos',
      'mlp_ratio',
      'mlp_cos',
      'ttv_layer',
      'ttv_acc',
      'attention',
      'score',
      'kept',
      'kind',
      'tile',
    ]);
    expect(rows).toHaveLength(5);
    expect(rows[2]).toEqual(['2', '1', '1', '0', '1', '2', '0.2', '6', '-0.2', '0.6', '0.2', '0.3', '0.3', '1', 'base', '0']);
    expect(rows[3]).toEqual(['2', '2', '2', '1', '0', '3', '0.3', '7', '-0.3', '0.7', '0.3', '0.2', '0.25', '0', 'base', '0']);
  });

  it('rejects files that are not valid traces, naming the problem', () => {
    expect(() => readTrace('not json')).toThrow(/not a trace file/);
    expect(() => readTrace('{"version": 99}')).toThrow(/version 99/);
    const shortLayout = structuredClone(trace);
    shortLayout.image!.layout.tokens.kind.pop();
    expect(() => readTrace(JSON.stringify(shortLayout))).toThrow(/layout.tokens.kind has 3 entries for 4 visual tokens/);
    expect(() => readTrace(JSON.stringify({ ...trace, layers: 'nope' }))).toThrow(/invalid trace: layers/);
    const bad = structuredClone(trace);
    bad.layers[1].kept = [3, 1];
    expect(() => readTrace(JSON.stringify(bad))).toThrow(/strictly increasing/);
  });

  it('reads version 1 files: the single view gets the layout LLaVA-1.5 framed it with (center square, class token first under full)', () => {
    const { layout: _, ...v1Image } = trace.image!;
    const v1 = { ...trace, version: 1, image: { ...v1Image, width: 30, height: 20, modelWidth: 14, modelHeight: 14 } };
    const read = readTrace(JSON.stringify(v1));
    expect(read.version).toBe(2);
    expect(read.image!.layout.tiles).toEqual([
      { kind: 'base', row: 0, col: 0, grid: { rows: 2, cols: 2 }, rect: { x: 5, y: 0, width: 20, height: 20 } },
    ]);
    expect(read.image!.layout.tokens).toEqual({
      kind: ['base', 'base', 'base', 'base'],
      tile: [0, 0, 0, 0],
      row: [0, 0, 1, 1],
      col: [0, 1, 0, 1],
    });
    const withCls = {
      ...v1,
      prompt: { ...v1.prompt, visualTokens: 5 },
      layers: v1.layers.map((l) => ({ ...l, tokens: undefined, ttv: undefined, scores: undefined })),
    };
    expect(readTrace(JSON.stringify(withCls)).image!.layout.tokens.kind).toEqual(['cls', 'base', 'base', 'base', 'base']);
    expect(readTrace(JSON.stringify({ ...v1, image: null })).image).toBeNull();
  });
});
