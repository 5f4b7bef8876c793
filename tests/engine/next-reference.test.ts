// LLaVA-NeXT on real imported packs against the float64 reference (tests/helpers/reference-next.ts for
// AnyRes, reference.ts for the decoder, reference-pruned.ts for TransPrune): the views' pixels, the
// packed visual tokens in transformers' order (base, unpadded tiles, newlines), prefill logits, greedy
// answers and TransPrune-High's kept sets, for a Vicuna-style (Llama) and a Mistral-style decoder whose
// sliding window is shorter than the prompt, on images of three aspect ratios.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareImage } from '../../src/engine/image/anyres.js';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../../src/engine/image/preprocess.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { createMethod } from '../../src/engine/pruning/index.js';
import { generate } from '../../src/engine/runtime/generate.js';
import { LoadedModel } from '../../src/engine/runtime/model.js';
import { prefill, type PrefillInput } from '../../src/engine/runtime/prefill.js';
import { encodeVisual } from '../../src/engine/runtime/vision.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { TraceRecorder } from '../../src/engine/trace/recorder.js';
import { parseMethod, positionPolicy } from '../../src/shared/pruning.js';
import { maxAbsDiff, relativeError } from '../helpers/diff.js';
import { referenceMethod } from '../helpers/reference-method.js';
import { referenceNextVisualTokens } from '../helpers/reference-next.js';
import { referencePrunedForward } from '../helpers/reference-pruned.js';
import { loadReferenceModel, referenceGenerate, referencePrefill, type ReferenceModel } from '../helpers/reference.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

const TILE = 28; // 4 x 4 patches of 7 px per view
const PINPOINTS: [number, number][] = [
  [TILE, 2 * TILE],
  [2 * TILE, TILE],
  [2 * TILE, 2 * TILE],
  [3 * TILE, TILE],
  [TILE, 3 * TILE],
];
const LAYERS = 8;
const NEW_TOKENS = 3;
const TOLERANCE = 1e-4;

/** Three aspect ratios: a wide one (1 x 3 tiles), a tall one (3 x 1) and a near-square one (2 x 2, unpadded rows). */
const IMAGES = { wide: [100, 35], tall: [30, 80], square: [60, 52] } as const;

const root = mkdtempSync(join(tmpdir(), 'tps-next-'));
const files = new Map<string, Uint8Array>();
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  for (const [name, [width, height]] of Object.entries(IMAGES)) {
    const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + Math.floor(i / (3 * width)) * 11) % 251);
    files.set(
      name,
      new Uint8Array(
        await sharp(rgb, { raw: { width, height, channels: 3 } })
          .png()
          .toBuffer(),
      ),
    );
  }
});

/** The image as the reference reads it: sharp's RGB decode, independent of the engine's. */
async function rgbOf(bytes: Uint8Array) {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data), width: info.width, height: info.height };
}

describe.each([
  { decoder: 'vicuna', options: { textModel: 'llama' as const } },
  { decoder: 'mistral', options: { textModel: 'mistral' as const, slidingWindow: 40, ropeTheta: 1e6 } },
])('LLaVA-NeXT $decoder vs the float64 reference', ({ decoder, options }) => {
  let model: LoadedModel;
  let reference: ReferenceModel;

  beforeAll(async () => {
    const checkpoint = join(root, decoder);
    await makeSyntheticCheckpoint(checkpoint, {
      preset: 'tiny-gqa',
      layers: LAYERS,
      imageSize: TILE,
      patchSize: 7,
      gridPinpoints: PINPOINTS,
      seed: 5,
      ...options,
    });
    const { dir } = await importCheckpoint(checkpoint, join(root, 'store'), { name: decoder });
    model = await LoadedModel.load(dir, { ep: 'cpu' });
    reference = loadReferenceModel(checkpoint);
  });
  afterAll(() => model?.dispose());

  async function encoded(image: keyof typeof IMAGES) {
    const bytes = files.get(image)!;
    const prepared = await prepareImage(bytes, model.clip, model.viewSpec);
    const visual = await encodeVisual(model, prepared);
    const { rgb, width, height } = await rgbOf(bytes);
    const expected = referenceNextVisualTokens(reference, rgb, width, height, {
      shortestEdge: TILE,
      tile: TILE,
      mean: OPENAI_CLIP_MEAN,
      std: OPENAI_CLIP_STD,
    });
    const { ids } = encodeChat(model.tokenizer, [{ role: 'user', text: 'What color is the square?', image: true }], {
      template: model.chatTemplate,
      imageTokenId: model.config.imageTokenIndex,
    });
    const input: PrefillInput = { ids, imageTokenId: model.config.imageTokenIndex, visual };
    return { prepared, visual, expected, input };
  }

  it.each(Object.keys(IMAGES) as (keyof typeof IMAGES)[])(
    '%s image: views, token count and order, logits, greedy answer',
    async (image) => {
      const { prepared, visual, expected, input } = await encoded(image);
      expect(prepared.views).toHaveLength(expected.views.length);
      prepared.views.forEach((view, i) => expect(maxAbsDiff(view, expected.views[i])).toBeLessThan(1e-5));
      expect(visual.count).toBe(expected.tokens.rows);
      expect(visual.layout.tokens.kind.filter((k) => k === 'newline').length).toBeGreaterThan(0);
      expect(relativeError(visual.features, expected.tokens.data)).toBeLessThan(TOLERANCE);
      // The window must bind, or the Mistral run would not test it.
      if ('slidingWindow' in options) expect(input.ids.length - 1 + visual.count).toBeGreaterThan(options.slidingWindow!);

      const ref = referencePrefill(reference, { inputIds: input.ids, visualTokens: expected.tokens });
      const engine = await prefill(model, input);
      expect(relativeError(engine.logits, ref.logits.data.subarray(ref.logits.data.length - engine.logits.length))).toBeLessThan(TOLERANCE);
      const greedy = referenceGenerate(reference, { inputIds: input.ids, visualTokens: expected.tokens, maxNewTokens: NEW_TOKENS });
      const answer = await generate(model, model.tokenizer, input, { maxTokens: NEW_TOKENS, eosTokenIds: [] });
      expect(answer.tokenIds).toEqual(greedy.tokens);
    },
  );

  it.each(Object.keys(IMAGES) as (keyof typeof IMAGES)[])(
    '%s image: TransPrune-High keeps the same tokens of the tiled set',
    async (image) => {
      const { expected, input, visual } = await encoded(image);
      const spec = parseMethod('transprune-high');
      const recorder = new TraceRecorder({
        model: model.traceModel,
        provider: 'cpu',
        image: null,
        prompt: { textTokens: input.ids.length - 1, visualTokens: visual.count, instructionTokens: 0, visualStart: 0 },
        method: spec,
        flopsModel: model.flopsModelFor(visual),
      });
      const method = createMethod(spec, { numLayers: LAYERS, pruning: model.pruningOverrides }, recorder);
      const run = await prefill(model, input, { method, positions: positionPolicy(spec.llm) });
      const ref = referencePrunedForward(
        reference,
        { inputIds: input.ids, visualTokens: expected.tokens },
        referenceMethod(spec.llm, LAYERS),
      );
      // Stage counts are floor(N r) of this image's own N.
      expect(run.visualCounts).toEqual(ref.visualCountPerLayer);
      expect(ref.stages.map((s) => s.keptOriginal.length)).toEqual([0.875, 0.625, 0.125].map((r) => Math.floor(visual.count * r)));
      run.layerMs.forEach((ms, l) => recorder.layer(l, run.visualCounts[l], run.cacheLength[l], ms));
      const stages = recorder.finish({ answer: '', generatedTokens: 0 }).layers.filter((l) => l.kept);
      stages.forEach((l, i) => expect(l.kept, `stage after layer ${l.layer}`).toEqual(Array.from(ref.stages[i].keptOriginal)));
      expect(relativeError(run.logits, ref.logits.data.subarray(ref.logits.data.length - run.logits.length))).toBeLessThan(TOLERANCE);
    },
  );
});
