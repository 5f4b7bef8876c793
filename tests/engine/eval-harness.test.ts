import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import { readVqaJsonl } from '../../src/engine/data/vqa.js';
import { runEval, type EvalReport } from '../../src/engine/eval/harness.js';
import { normalizeAnswer } from '../../src/engine/eval/metrics.js';
import { writeReport } from '../../src/engine/eval/report.js';
import { positionStats } from '../../src/engine/eval/positions.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

// Accuracy is meaningless on random weights: this checks structure, counts, aggregation and files.
describe('the harness end to end on a tiny random checkpoint', () => {
  let dir: string;
  let engine: Engine;
  let report: EvalReport;
  let checkpointDir: string;
  const methods = ['none', 'transprune-high', 'fastv'].map((name) => ({ name, spec: parseMethod(name) }));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'eval-'));
    const checkpoint = await makeSyntheticCheckpoint(join(dir, 'ckpt'), { preset: 'tiny', layers: 8, chatTemplate: true });
    checkpointDir = checkpoint.dir;
    const items = (await readVqaJsonl('resources/vqa-test/test.jsonl')).slice(0, 3);
    const notAnImage = join(dir, 'not-an-image.jpg');
    await writeFile(notAnImage, 'plain text, not a JPEG');
    items.push({
      id: 'bad',
      image: 'not-an-image.jpg',
      imagePath: notAnImage,
      question: 'What color is the circle?',
      answer: 'red',
      family: 'colour',
    });
    engine = new Engine({ modelStore: join(dir, 'store'), ep: 'cpu', threads: 1 });
    const progress: number[] = [];
    report = await runEval(engine, { model: checkpoint.dir, items, methods, maxTokens: 3, onProgress: (done) => progress.push(done) });
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  afterAll(async () => {
    await engine?.unload();
    await rm(dir, { recursive: true, force: true });
  });

  it('asks every item under every method and aggregates per family', () => {
    expect(report.items).toBe(4);
    expect(report.predictions).toHaveLength(12);
    for (const summary of report.methods) {
      const mine = report.predictions.filter((p) => p.method === summary.method);
      expect(mine.map((p) => p.id)).toEqual(['test-0-0', 'test-1-0', 'test-2-0', 'bad']);
      const byFamily: Record<string, { correct: number; total: number }> = {};
      for (const p of mine) {
        expect(p.correct).toBe(normalizeAnswer(p.prediction) === normalizeAnswer(p.answer));
        byFamily[p.family] ??= { correct: 0, total: 0 };
        byFamily[p.family].total += 1;
        byFamily[p.family].correct += Number(p.correct);
      }
      expect(Object.keys(summary.perFamily).sort()).toEqual(['colour', 'count', 'shape']);
      for (const [family, t] of Object.entries(byFamily)) expect(summary.perFamily[family]).toMatchObject(t);
      expect(summary.overall.total).toBe(4);
      expect(summary.meanPrefillMs).toBeGreaterThan(0);
      expect(summary.errors).toBe(1);
    }
  });

  it('records an image the engine refuses as a wrong answer with its error, and goes on', () => {
    const bad = report.predictions.filter((p) => p.id === 'bad');
    expect(bad).toHaveLength(3);
    for (const p of bad) {
      expect(p.correct).toBe(false);
      expect(p.error).toMatch(/image/i);
    }
    expect(report.predictions.filter((p) => p.error !== undefined)).toHaveLength(3);
  });

  it('counts paper TFLOPs from the visual tokens per layer, and pruning lowers both conventions', () => {
    const [none, transprune, fastv] = report.methods;
    // Tiny preset: hidden 64, intermediate 128, 28 px / patch 7 = 16 visual tokens, 8 layers.
    const perLayer = (n: number) => 4 * n * 64 * 64 + 2 * n * n * 64 + 3 * n * 64 * 128;
    expect(none.tflopsPaper).toBeCloseTo((8 * perLayer(16)) / 1e12, 15);
    expect(none.meanVisualKept).toBe(16);
    for (const pruned of [transprune, fastv]) {
      expect(pruned.meanVisualKept).toBeLessThan(16);
      expect(pruned.tflopsPaper).toBeLessThan(none.tflopsPaper);
      expect(pruned.tflopsFull).toBeLessThan(none.tflopsFull);
    }
    expect(fastv.meanVisualKept).toBe(8); // K=2, R=0.5
  });

  it('writes JSON, markdown and a PNG chart', async () => {
    const files = await writeReport(join(dir, 'out'), report, { command: 'test', data: 'fixture', createdAt: '2026-01-01T00:00:00Z' });
    expect(files.every(existsSync)).toBe(true);
    const json = JSON.parse(await readFile(join(dir, 'out', 'eval.json'), 'utf8'));
    expect(json.predictions).toHaveLength(12);
    expect(json.methods.map((m: { method: string }) => m.method)).toEqual(['none', 'transprune-high', 'fastv']);
    expect((await readFile(join(dir, 'out', 'eval.md'), 'utf8')).split('\n').filter((l) => l.startsWith('| '))).toHaveLength(5);
    expect((await sharp(join(dir, 'out', 'eval.png')).metadata()).format).toBe('png');
  });

  it('with positions, counts where on the grid the tokens kept after the last stage sit', async () => {
    // Tiny preset: 28 px / patch 7 = a 4 x 4 grid; FastV K=2 R=0.5 keeps 8 of 16.
    const good = (await readVqaJsonl('resources/vqa-test/test.jsonl')).slice(0, 3);
    const traced = await runEval(engine, {
      model: checkpointDir,
      items: good,
      methods: ['none', 'fastv'].map((name) => ({ name, spec: parseMethod(name) })),
      maxTokens: 1,
      positions: true,
    });
    expect(traced.positions!.none).toEqual({ counts: new Array(16).fill(3), gridCols: 4, answers: 3 });
    const flat = positionStats(traced.positions!.none);
    expect(flat.rowShares).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(flat.edgeRowShare).toBe(0.5);
    expect(flat.relativeEntropy).toBeCloseTo(1, 12);
    expect(flat.centroidOffset).toBeCloseTo(0, 12);
    const fastv = traced.positions!.fastv;
    expect(fastv.answers).toBe(3);
    expect(fastv.counts.reduce((a, b) => a + b, 0)).toBe(3 * 8);
    expect(Math.max(...fastv.counts)).toBeLessThanOrEqual(3);
    expect(positionStats(fastv).relativeEntropy).toBeLessThan(1);
    const files = await writeReport(join(dir, 'positions'), traced, {
      command: 'test',
      data: 'fixture',
      createdAt: '2026-01-01T00:00:00Z',
    });
    expect(files).toContain(join(dir, 'positions', 'positions.png'));
    expect((await sharp(join(dir, 'positions', 'positions.png')).metadata()).format).toBe('png');
    const md = await readFile(join(dir, 'positions', 'eval.md'), 'utf8');
    expect(md).toMatch(/\| none \| 50\.0 \| 1\.000 \| 0\.00 \|/);
  });
});
