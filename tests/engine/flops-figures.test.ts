import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import type { AnswerStats } from '../../src/shared/conversation.js';
import type { Trace } from '../../src/shared/trace.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { statItems } from '../../src/renderer/features/chat/StatsRow.js';
import { formatCompute } from '../../src/renderer/features/common/format.js';
import { traceToView } from '../../src/renderer/features/inspector/traceAdapter.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * One compute figure per answer: the number under a chat answer (StatsRow) and the inspector's (header
 * and per-layer chart) are read from the trace's per-layer FLOPs, and equal TransPrune's Eq. 7 (method
 * spec §6.1: 4nd² + 2n²d + 3ndm multiply-accumulates per layer, n = the visual tokens entering it),
 * written out here for the per-layer token counts the runtime recorded.
 */

const LAYERS = 12;
const root = mkdtempSync(join(tmpdir(), 'tps-flops-'));
let checkpoint: SyntheticCheckpoint;
let image: string;
let engine: Engine;

const eq7 = (n: number, d: number, m: number) => 4 * n * d * d + 2 * n * n * d + 3 * n * d * m;
const computeFigure = (stats: AnswerStats) => statItems(stats).find((item) => item.label === 'compute')!.value;

beforeAll(async () => {
  checkpoint = await makeSyntheticCheckpoint(join(root, 'ckpt'), { preset: 'tiny-gqa', layers: LAYERS, imageSize: 56, seed: 3 });
  image = join(root, 'image.png');
  writeFileSync(
    image,
    await sharp({ create: { width: 60, height: 44, channels: 3, background: '#3a7' } })
      .png()
      .toBuffer(),
  );
  engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
});

afterAll(async () => {
  await engine?.unload();
  rmSync(root, { recursive: true, force: true });
});

/** What Eq. 7 gives for the token counts of `trace`, and for every layer running all N visual tokens. */
function independentCount(trace: Trace) {
  const { hidden: d, intermediate: m } = checkpoint.shape;
  const perLayer = trace.layers.map((l) => eq7(l.visualIn, d, m));
  return { perLayer, total: perLayer.reduce((a, b) => a + b, 0), unpruned: LAYERS * eq7(checkpoint.numVisualTokens, d, m) };
}

describe('one FLOPs count per answer', () => {
  it.each(['transprune-high', 'fastv:k=2,r=0.5', 'divprune:count=32+transprune-high'])(
    '%s: the chat stats and the inspector show the same compute, Eq. 7 of the recorded token counts',
    async (method) => {
      const result = await engine.ask({
        model: checkpoint.dir,
        image,
        question: 'What colour is it?',
        method: parseMethod(method),
        maxTokens: 2,
      });
      const { stats, trace } = result;
      expect(trace.layers.map((l) => l.visualIn)).toEqual(result.visualCounts);
      expect(Math.min(...result.visualCounts)).toBeLessThan(checkpoint.numVisualTokens); // it pruned

      const expected = independentCount(trace);
      const view = traceToView(trace);
      expect(computeFigure(stats)).toBe(formatCompute(view.tflops, view.tflopsUnpruned));
      expect(computeFigure(stats)).toBe(formatCompute(expected.total / 1e12, expected.unpruned / 1e12));
      expect([stats.tflops, stats.tflopsUnpruned]).toEqual([view.tflops, view.tflopsUnpruned]);
      expect(stats.tflops / (expected.total / 1e12)).toBeCloseTo(1, 12);
      expect(stats.tflopsUnpruned / (expected.unpruned / 1e12)).toBeCloseTo(1, 12);

      // The inspector's chart: each layer's recorded count, summing to the header's.
      expect(trace.layers.map((l) => l.flops!.paper)).toEqual(expected.perLayer);
      view.layerTflops.forEach((t, i) => expect(t / (expected.perLayer[i] / 1e12)).toBeCloseTo(1, 12));
      expect(view.layerTflops.reduce((a, b) => a + b, 0) / view.tflops).toBeCloseTo(1, 12);
      view.layerTflopsUnpruned.forEach((t) => expect(t / (expected.unpruned / LAYERS / 1e12)).toBeCloseTo(1, 12));

      // The full count of the same answer is the layers' own plus the vision tower, projector and head.
      expect(trace.totals.flops.full).toBeGreaterThan(trace.layers.reduce((sum, l) => sum + l.flops!.full, 0));
    },
  );

  it('compare: each answer carries the figure it has alone', async () => {
    const methods = [parseMethod('none'), parseMethod('transprune-high')];
    const request = { model: checkpoint.dir, image, question: 'What colour is it?', maxTokens: 2 };
    const { results } = await engine.compare({ ...request, methods });
    for (const [i, method] of methods.entries()) {
      const alone = await engine.ask({ ...request, method });
      expect(computeFigure(results[i].stats)).toBe(computeFigure(alone.stats));
      const expected = independentCount(results[i].trace);
      expect(results[i].stats.tflops / (expected.total / 1e12)).toBeCloseTo(1, 12);
    }
    expect(computeFigure(results[0].stats)).toMatch(/\(100%\)$/);
  });
});
