// A Qwen2.5-VL checkpoint through the Engine, as the app and the CLI use it: the Hugging Face folder imported on first
// use, questions with and without an image, TransPrune with each kept token at its own 3D position by default (the
// PyTorch reference's kept sets), and the trace's image grid at the image's merged 28 px cells for the inspector.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticQwenCheckpoint } from '../../src/engine/checkpoint/synthetic-qwen.js';
import { addKept, emptyPositions } from '../../src/engine/eval/positions.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { traceToView } from '../../src/renderer/features/inspector/traceAdapter.js';
import { parseMethod } from '../../src/shared/pruning.js';
import { keptFromHex } from '../helpers/kept-parity.js';
import { writeNextCheckpoint } from '../helpers/next-fixture.js';
import { QWEN_FIXTURES, readQwenFixture } from '../helpers/qwen-fixture.js';

const root = mkdtempSync(join(tmpdir(), 'tps-qwen-engine-'));
const fixture = readQwenFixture('untied');
const checkpoint = join(root, 'qwen-untied');
let engine: Engine;

beforeAll(async () => {
  await writeNextCheckpoint(fixture, checkpoint);
  engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
});
afterAll(async () => {
  await engine?.unload();
  rmSync(root, { recursive: true, force: true });
});

describe('a random-weight Qwen2.5-VL checkpoint (make-checkpoint --preset tiny-qwen)', () => {
  it('imports and answers; a 1024 x 768 image within 64 tokens of pixels is 6 x 9 tokens, pruned in floor(N r) stages', async () => {
    const dir = join(root, 'tiny-qwen');
    await makeSyntheticQwenCheckpoint(dir, { preset: 'tiny-qwen', seed: 3 });
    const image = join(root, 'pattern.png');
    const rgb = Uint8Array.from({ length: 1024 * 768 * 3 }, (_, i) => (i * 37) % 251);
    writeFileSync(
      image,
      await sharp(rgb, { raw: { width: 1024, height: 768, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const result = await engine.ask({ model: dir, image, question: 'What is it?', method: parseMethod('transprune-high'), maxTokens: 2 });
    expect(result.trace.image?.grid).toEqual({ rows: 6, cols: 9 });
    // 4 layers: TransPrune-High scaled to prune after layers 1, 2, 3 (keep 47, 33, 6 of 54).
    expect(result.visualCounts).toEqual([54, 47, 33, 6]);
    expect(result.stats.generatedTokens).toBe(2);
  });
});

describe('Qwen2.5-VL in the Engine', () => {
  it.each(Object.keys(fixture.cases))('%s image: the greedy answer of transformers, the merged grid in the trace', async (name) => {
    const c = fixture.cases[name];
    const result = await engine.ask({
      model: checkpoint,
      image: join(QWEN_FIXTURES, c.image),
      question: c.question,
      method: parseMethod('none'),
      maxTokens: c.greedy.ids.length,
    });
    expect(result.answer).toBe(c.greedy.text.trim());
    const [, h, w] = c.image_grid_thw;
    expect(result.trace.image?.grid).toEqual({ rows: h / 2, cols: w / 2 });
    expect([result.trace.image?.modelWidth, result.trace.image?.modelHeight]).toEqual([w * 14, h * 14]);
    expect([result.trace.image?.width, result.trace.image?.height]).toEqual(c.image_size);
    expect(result.trace.prompt.visualTokens).toBe(c.num_visual);
    expect(result.visualCounts.every((n) => n === c.num_visual)).toBe(true);
    // eval --positions counts each token at its place in the image on the pack's grid (every image has its own grid).
    const positions = emptyPositions({ rows: 4, cols: 4 });
    addKept(positions, result.trace);
    expect(positions.counts.reduce((a, b) => a + b, 0)).toBe(c.num_visual);
    if (name === 'wide') expect(positions.counts).toEqual([0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2]); // 2 x 8: row centres at 1/4 and 3/4
    // The inspector draws that grid over the whole image, stretched as the model saw it.
    const view = traceToView(result.trace);
    expect(view.grid).toEqual({ rows: h / 2, cols: w / 2 });
    expect(view.resizePolicy).toBe('stretch');
  });

  it('TransPrune-High keeps the PyTorch reference tokens at their own 3D positions unless asked to compact', async () => {
    const c = fixture.cases.wide;
    const request = { model: checkpoint, image: join(QWEN_FIXTURES, c.image), question: c.question, maxTokens: 2 };
    for (const [method, positions] of [
      ['transprune-high', 'original'],
      ['transprune-high:positions=compact', 'compact'],
    ] as const) {
      const { trace } = await engine.ask({ ...request, method: parseMethod(method) });
      const expected = c.transprune_high.runs.find((r) => r.positions === positions)!;
      const stages = trace.layers.filter((l) => l.kept);
      expect(stages.map((l) => l.layer)).toEqual(expected.stages.map((s) => s.after_layer));
      stages.forEach((l, i) => expect(l.kept, `${method} after layer ${l.layer}`).toEqual(keptFromHex(expected.stages[i].kept_hex)));
    }
  });

  it("a visual-token budget (maxPixels) shrinks the image as smart_resize does: 420 x 150 within 4 tokens' pixels is 84 x 28", async () => {
    const c = fixture.cases.wide;
    const request = {
      model: checkpoint,
      image: join(QWEN_FIXTURES, c.image),
      question: c.question,
      method: parseMethod('none'),
      maxTokens: 1,
    };
    const { trace } = await engine.ask({ ...request, maxPixels: 4 * 28 * 28 });
    expect(trace.image?.grid).toEqual({ rows: 1, cols: 3 });
    expect([trace.image?.modelWidth, trace.image?.modelHeight]).toEqual([84, 28]);
    expect(trace.prompt.visualTokens).toBe(3);
    // The checkpoint's own budget again: the cached tokens of the other size are not reused.
    expect((await engine.ask(request)).trace.prompt.visualTokens).toBe(c.num_visual);
    await expect(engine.ask({ ...request, maxPixels: 28 * 28 })).rejects.toThrow(/below the checkpoint's min_pixels/);
  });

  it("a folder in the Hub's layout (flat config, rope_scaling mrope, chat_template.json, min/max_pixels) answers the same", async () => {
    // The Hub's Qwen2.5-VL checkpoints were saved by transformers 4.x: the text model's keys beside vision_config.
    const hub = join(root, 'qwen-hub-layout');
    await writeNextCheckpoint(fixture, hub);
    const nested = JSON.parse(readFileSync(join(hub, 'config.json'), 'utf8'));
    const { rope_parameters: rope, layer_types: _, model_type: __, ...text } = nested.text_config;
    const { text_config: ___, ...top } = nested;
    const flat = { ...top, ...text, rope_theta: rope.rope_theta, rope_scaling: { type: 'mrope', mrope_section: rope.mrope_section } };
    writeFileSync(join(hub, 'config.json'), JSON.stringify(flat));
    writeFileSync(
      join(hub, 'chat_template.json'),
      JSON.stringify({ chat_template: readFileSync(join(hub, 'chat_template.jinja'), 'utf8') }),
    );
    rmSync(join(hub, 'chat_template.jinja'));
    const pre = JSON.parse(readFileSync(join(hub, 'preprocessor_config.json'), 'utf8'));
    const { size, ...rest } = pre;
    writeFileSync(
      join(hub, 'preprocessor_config.json'),
      JSON.stringify({ ...rest, min_pixels: size.shortest_edge, max_pixels: size.longest_edge }),
    );

    const c = fixture.cases.tall;
    const request = {
      image: join(QWEN_FIXTURES, c.image),
      question: c.question,
      method: parseMethod('none'),
      maxTokens: c.greedy.ids.length,
    };
    const result = await engine.ask({ ...request, model: hub });
    expect(result.answer).toBe(c.greedy.text.trim());
    expect(result.trace.prompt.visualTokens).toBe(c.num_visual);
  });

  it('answers a text-only question and compares methods on one image', async () => {
    const textOnly = await engine.ask({
      model: checkpoint,
      question: 'What color is the square?',
      method: parseMethod('none'),
      maxTokens: 3,
    });
    expect(textOnly.trace.image).toBeNull();
    expect(textOnly.stats.generatedTokens).toBeGreaterThan(0);
    const c = fixture.cases.square;
    const { results } = await engine.compare({
      model: checkpoint,
      image: join(QWEN_FIXTURES, c.image),
      question: c.question,
      methods: ['none', 'transprune-high', 'fastv', 'pdrop', 'random', 'divprune:ratio=0.5'].map((m) => parseMethod(m)),
      maxTokens: 2,
    });
    expect(results.map((r) => r.visualCounts[0])).toEqual([16, 16, 16, 16, 16, 8]);
    expect(results.map((r) => Math.min(...r.visualCounts))).toEqual([16, 2, 8, 2, 2, 8]);
  });
});
