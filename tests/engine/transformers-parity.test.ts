import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import { DEMO_MODEL_DIR } from '../../src/engine/data/demo-model.js';
import { prepareImage } from '../../src/engine/image/anyres.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import type { LoadedModel } from '../../src/engine/runtime/model.js';
import { encodeVisual } from '../../src/engine/runtime/vision.js';
import { prefill, type PrefillInput } from '../../src/engine/runtime/prefill.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { maxAbsDiff, relativeError } from '../helpers/diff.js';
import { expectSameKept, type ReferenceStage } from '../helpers/kept-parity.js';

/**
 * The engine against transformers + PIL + PyTorch (fixtures by tools/demo-model/make_fixtures.py,
 * committed in tests/fixtures/reference): on a tiny random checkpoint and, once it is trained, the
 * shipped demo model, for real image files of different kinds (EXIF-rotated JPEG, PNG with alpha, grey
 * PNG, wide panorama) and test-split items: LlavaProcessor's pixel values, prompt ids, vision features,
 * per-layer hidden states (sampled rows), prefill logits, greedy answers; and the kept visual tokens at
 * every stage of six pruning methods over 20 test items from a PyTorch implementation of the released
 * code (on the demo model; on the tiny one while there is no demo model).
 */

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'tests/fixtures/reference');
const TOLERANCE = 1e-4;

interface Summary {
  shape: number[];
  mean: number;
  std: number;
  abs_max: number;
  rows: Record<string, number[]>;
}

interface DetailCase {
  id: string;
  image: string;
  question: string;
  prompt_ids: number[];
  visual_start: number;
  num_visual: number;
  pixel_values: { uint8_png: string; mean_per_channel: number[]; std_per_channel: number[] };
  image_features: Summary;
  layer_outputs: Summary[];
  prefill_logits_last: number[];
  greedy: { ids: number[]; text: string };
}

interface PruningCase {
  id: string;
  image: string;
  question: string;
  methods: Record<string, { stages: ReferenceStage[] }>;
}

interface Fixture {
  model: string;
  num_layers: number;
  cases: DetailCase[];
  pruning?: PruningCase[];
}

const readFixture = (name: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
const CHECKPOINTS = { tiny: join(FIXTURES, 'tiny-llava'), demo: DEMO_MODEL_DIR };
/** make_fixtures.py writes demo.json only when the demo model exists. */
const MODELS = (['tiny', 'demo'] as const).filter((name) => existsSync(join(FIXTURES, `${name}.json`)));
const PRUNING_MODEL = MODELS.includes('demo') ? 'demo' : 'tiny';

const root = mkdtempSync(join(tmpdir(), 'tps-hf-parity-'));
const engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });

afterAll(async () => {
  await engine.unload();
  rmSync(root, { recursive: true, force: true });
});

/** CLIP normalization of the uint8 image the processor normalized, in float64: the expected pixel values. */
async function expectedPixels(png: string, model: LoadedModel): Promise<Float32Array> {
  const { data, info } = await sharp(resolve(ROOT, png)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { mean, std, rescaleFactor } = model.clip;
  const out = new Float32Array(3 * info.width * info.height);
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < info.width * info.height; i++)
      out[c * info.width * info.height + i] = (data[i * 3 + c] * rescaleFactor - mean![c]) / std![c];
  return out;
}

function rowsOf(summary: Summary, matrix: Float32Array, cols: number): Array<[string, Float32Array, number[]]> {
  return Object.entries(summary.rows).map(([r, expected]) => [r, matrix.subarray(Number(r) * cols, (Number(r) + 1) * cols), expected]);
}

it('has the tiny fixture, and the demo one whenever the demo model is shipped', () => {
  expect(MODELS).toContain('tiny');
  expect(MODELS.includes('demo')).toBe(existsSync(join(DEMO_MODEL_DIR, 'config.json')));
});

describe.each(MODELS)('%s model vs transformers', (name) => {
  const fixture = readFixture(name);
  let model: LoadedModel;
  const inputs = new Map<string, { pixels: Float32Array; input: PrefillInput }>();

  beforeAll(async () => {
    model = await engine.ensureModel(CHECKPOINTS[name], 'cpu');
    for (const c of fixture.cases) {
      // The engine's own intake: what Engine.ask runs on every image.
      const image = await prepareImage(readFileSync(resolve(ROOT, c.image)), model.clip, model.viewSpec);
      expect(image.views).toHaveLength(1);
      const { ids } = encodeChat(model.tokenizer, [{ role: 'user', text: c.question, image: true }], {
        template: model.chatTemplate,
        imageTokenId: model.config.imageTokenIndex,
      });
      const visual = await encodeVisual(model, image);
      inputs.set(c.id, { pixels: image.views[0], input: { ids, imageTokenId: model.config.imageTokenIndex, visual } });
    }
  });

  it.each(fixture.cases.map((c) => [c.id, c] as const))('%s: pixel values equal LlavaProcessor to 1e-5', async (_, c) => {
    const { pixels } = inputs.get(c.id)!;
    expect(maxAbsDiff(pixels, await expectedPixels(c.pixel_values.uint8_png, model))).toBeLessThanOrEqual(1e-5);
  });

  it.each(fixture.cases.map((c) => [c.id, c] as const))('%s: prompt ids, vision features, every layer, logits', async (_, c) => {
    const { input } = inputs.get(c.id)!;
    expect(input.ids).toEqual(c.prompt_ids);
    const dim = c.image_features.shape[1];
    expect(input.visual!.count).toBe(c.num_visual);
    for (const [r, actual, expected] of rowsOf(c.image_features, input.visual!.features, dim))
      expect(relativeError(actual, expected), `image feature row ${r}`).toBeLessThan(TOLERANCE);

    const hidden: Float32Array[] = [];
    const result = await prefill(model, input, { onLayerOutput: (_, h) => hidden.push(h.slice()) });
    expect(hidden).toHaveLength(fixture.num_layers);
    hidden.forEach((h, l) => {
      for (const [r, actual, expected] of rowsOf(c.layer_outputs[l], h, dim))
        expect(relativeError(actual, expected), `layer ${l} row ${r}`).toBeLessThan(TOLERANCE);
    });
    expect(relativeError(result.logits, c.prefill_logits_last)).toBeLessThan(TOLERANCE);
  });

  it.each(fixture.cases.map((c) => [c.id, c] as const))('%s: the greedy answer is the one transformers generates', async (_, c) => {
    const result = await engine.ask({
      model: CHECKPOINTS[name],
      image: resolve(ROOT, c.image),
      question: c.question,
      method: parseMethod('none'),
      maxTokens: 8,
    });
    expect(result.answer.trim()).toBe(c.greedy.text);
  });
});

describe(`${PRUNING_MODEL} model: kept tokens equal the PyTorch implementation of the released code`, () => {
  const fixture = readFixture(PRUNING_MODEL);
  const cases = fixture.pruning ?? [];

  it('covers six methods over at least 20 test items', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
    expect(Object.keys(cases[0].methods).sort()).toEqual(['fastv', 'iga', 'pdrop', 'transprune-high', 'transprune-low', 'ttv']);
  });

  it.each(cases.map((c) => [c.id, c] as const))('%s: every stage of every method', async (_, c) => {
    for (const [method, { stages }] of Object.entries(c.methods)) {
      const { trace } = await engine.ask({
        model: CHECKPOINTS[PRUNING_MODEL],
        image: resolve(ROOT, c.image),
        question: c.question,
        method: parseMethod(method),
        maxTokens: 1,
      });
      const pruned = trace!.layers.filter((l) => l.kept);
      expectSameKept(method, stages, pruned);
    }
  });
});
