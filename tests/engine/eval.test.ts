import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import { DemoModelMissingError, demoModelDir } from '../../src/engine/data/demo-model.js';
import type { EvalReport } from '../../src/engine/eval/harness.js';
import { splitMethodList } from '../../src/engine/eval/method-list.js';
import { isExactMatch, normalizeAnswer, tallyByFamily } from '../../src/engine/eval/metrics.js';
import { chartPng, markdownTable } from '../../src/engine/eval/report.js';

describe('answer normalisation', () => {
  it.each([
    ['Red.', 'red'],
    ['The circle', 'circle'],
    ['  an   orange ', 'orange'],
    ['Three', '3'],
    ['There are two!', 'there are 2'],
    ['yes, it is', 'yes it is'],
    ['7', '7'],
  ])('%j -> %j', (raw, normalized) => {
    expect(normalizeAnswer(raw)).toBe(normalized);
  });

  it('matches exactly after normalisation only', () => {
    expect(isExactMatch('Yes.', 'yes')).toBe(true);
    expect(isExactMatch('four', '4')).toBe(true);
    expect(isExactMatch('yes it is', 'yes')).toBe(false);
    expect(isExactMatch('', 'no')).toBe(false);
  });

  it('tallies per family', () => {
    const { overall, perFamily } = tallyByFamily([
      { family: 'count', correct: true },
      { family: 'count', correct: false },
      { family: 'colour', correct: true },
    ]);
    expect(overall).toEqual({ correct: 2, total: 3, accuracy: 2 / 3 });
    expect(perFamily).toEqual({ colour: { correct: 1, total: 1, accuracy: 1 }, count: { correct: 1, total: 2, accuracy: 0.5 } });
  });
});

describe('reports', () => {
  const report: EvalReport = {
    model: { id: 'm', numLayers: 2, hidden: 8 },
    provider: 'cpu',
    items: 2,
    predictions: [],
    methods: [
      {
        method: 'none',
        spec: parseMethod('none'),
        overall: { correct: 2, total: 2, accuracy: 1 },
        perFamily: { count: { correct: 1, total: 1, accuracy: 1 }, exist: { correct: 1, total: 1, accuracy: 1 } },
        errors: 0,
        meanPrefillMs: 12.34,
        meanVisualKept: 576,
        tflopsPaper: 0.0123,
        tflopsFull: 0.0456,
      },
      {
        method: 'transprune-high',
        spec: parseMethod('transprune-high'),
        overall: { correct: 1, total: 2, accuracy: 0.5 },
        perFamily: { count: { correct: 0, total: 1, accuracy: 0 }, exist: { correct: 1, total: 1, accuracy: 1 } },
        errors: 0,
        meanPrefillMs: 8,
        meanVisualKept: 72,
        tflopsPaper: 0.005,
        tflopsFull: 0.02,
      },
    ],
  };

  it('tabulates one row per method with both FLOPs conventions', () => {
    const lines = markdownTable(report).split('\n');
    expect(lines[0]).toBe('| method | accuracy % | count % | exist % | visual kept | TFLOPs (paper) | TFLOPs (full) | prefill ms |');
    expect(lines[2]).toBe('| none | 100.0 | 100.0 | 100.0 | 576 | 0.0123 | 0.0456 | 12.3 |');
    expect(lines[3]).toBe('| transprune-high | 50.0 | 0.0 | 100.0 | 72 | 0.00500 | 0.0200 | 8.0 |');
  });

  it('adds an errors column only when some item failed', () => {
    const failing = { ...report, methods: report.methods.map((m, i) => ({ ...m, errors: i })) };
    const lines = markdownTable(failing).split('\n');
    expect(lines[0].endsWith('| prefill ms | errors |')).toBe(true);
    expect(lines[3].endsWith('| 8.0 | 1 |')).toBe(true);
  });

  it('draws the chart as a PNG', async () => {
    const meta = await sharp(await chartPng(report)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1000, 560]);
  });
});

describe('method lists', () => {
  it("splits on commas between methods, not between one method's options", () => {
    expect(splitMethodList('none,fastv:k=2,r=0.5,ttv, divprune:ratio=0.5+transprune-low')).toEqual([
      'none',
      'fastv:k=2,r=0.5',
      'ttv',
      'divprune:ratio=0.5+transprune-low',
    ]);
    expect(splitMethodList(' , ')).toEqual([]);
  });
});

describe('the demo model', () => {
  it('says how to train it when its checkpoint is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'demo-'));
    expect(() => demoModelDir(empty)).toThrow(DemoModelMissingError);
    expect(() => demoModelDir(empty)).toThrow(/not trained yet[\s\S]*tools\/demo-model\/train\.sh/);
    await writeFile(join(empty, 'config.json'), '{}');
    expect(demoModelDir(empty)).toBe(empty);
  });
});
