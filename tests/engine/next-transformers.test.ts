// LLaVA-NeXT parity with transformers, without Python: the fixtures of tools/demo-model/make_next_fixtures.py
// (LlavaNextProcessor with the PIL image processor and LlavaNextForConditionalGeneration on two tiny
// random checkpoints, Vicuna-style and Mistral-style with a binding sliding window; four aspect ratios)
// against the engine on the same checkpoints, imported here: the prompt and its token ids, the views'
// pixel values, the visual tokens in order (newlines where transformers put them), every layer's output,
// the prefill logits, the greedy answer, and TransPrune-High's kept sets from the PyTorch reference.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareImage } from '../../src/engine/image/anyres.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { createMethod } from '../../src/engine/pruning/index.js';
import { generate } from '../../src/engine/runtime/generate.js';
import { LoadedModel } from '../../src/engine/runtime/model.js';
import { prefill, type PrefillInput } from '../../src/engine/runtime/prefill.js';
import { encodeVisual } from '../../src/engine/runtime/vision.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { TraceRecorder } from '../../src/engine/trace/recorder.js';
import { parseMethod, positionPolicy, resolveSchedule } from '../../src/shared/pruning.js';
import { relativeError } from '../helpers/diff.js';
import { keptFromHex } from '../helpers/kept-parity.js';
import { NEXT_FIXTURES, readNextFixture, writeNextCheckpoint } from '../helpers/next-fixture.js';

const PIXELS = 1e-5;
const RELATIVE = 1e-4;
const root = mkdtempSync(join(tmpdir(), 'tps-next-hf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(['vicuna', 'mistral'] as const)('LLaVA-NeXT %s vs transformers', (name) => {
  const fixture = readNextFixture(name);
  let model: LoadedModel;

  beforeAll(async () => {
    const checkpoint = join(root, name);
    await writeNextCheckpoint(fixture, checkpoint);
    const { dir } = await importCheckpoint(checkpoint, join(root, 'store'), { name });
    model = await LoadedModel.load(dir, { ep: 'cpu' });
  });
  afterAll(() => model?.dispose());

  it('is the architecture the fixture says', () => {
    expect(fixture.image_processor).toBe('LlavaNextImageProcessorPil');
    expect(model.config.anyres?.gridPinpoints).toHaveLength(5);
    if (name === 'mistral') {
      expect(model.config.text.ropeTheta).toBe(1e6);
      expect(model.config.text.slidingWindow).toBe(96);
      // Every case is longer than the window, so it shapes the outputs compared below.
      for (const c of Object.values(fixture.cases)) expect(c.prompt_ids.length - 1 + c.num_visual).toBeGreaterThan(96);
    } else expect(model.config.text.slidingWindow).toBeUndefined();
  });

  describe.each(Object.keys(fixture.cases))('%s image', (image) => {
    const c = fixture.cases[image];
    let input: PrefillInput;
    let prepared: Awaited<ReturnType<typeof prepareImage>>;
    let visual: Awaited<ReturnType<typeof encodeVisual>>;

    beforeAll(async () => {
      prepared = await prepareImage(new Uint8Array(readFileSync(join(NEXT_FIXTURES, c.image))), model.clip, model.viewSpec);
      visual = await encodeVisual(model, prepared);
      const prompt = encodeChat(model.tokenizer, [{ role: 'user', text: c.question, image: true }], {
        template: model.chatTemplate,
        imageTokenId: model.config.imageTokenIndex,
      });
      expect(prompt.text).toBe(c.prompt);
      input = { ids: prompt.ids, imageTokenId: model.config.imageTokenIndex, visual };
    });

    it('the processor: prompt ids, view count and pixel values within 1e-5', async () => {
      expect(input.ids).toEqual(c.prompt_ids);
      expect(input.ids.indexOf(model.config.imageTokenIndex)).toBe(c.visual_start);
      const { views } = prepared;
      const [viewCount, , side] = c.pixel_values.shape;
      expect(views).toHaveLength(viewCount);
      const perView = 3 * side * side;
      c.pixel_values.samples.flat_index.forEach((flat, i) => {
        const value = views[Math.floor(flat / perView)][flat % perView];
        expect(Math.abs(value - c.pixel_values.samples.value[i])).toBeLessThan(PIXELS);
      });
      views.forEach((view, v) => {
        for (let ch = 0; ch < 3; ch++) {
          const plane = view.subarray(ch * side * side, (ch + 1) * side * side);
          const mean = plane.reduce((s, x) => s + x, 0) / plane.length;
          expect(Math.abs(mean - c.pixel_values.mean_per_view_channel[v][ch])).toBeLessThan(PIXELS);
        }
      });
    });

    it('the visual tokens: same count, newlines at the same places, rows within 1e-4', () => {
      expect(visual.count).toBe(c.num_visual);
      const newlines = visual.layout.tokens.kind.flatMap((k, i) => (k === 'newline' ? [i] : []));
      expect(newlines).toEqual(c.visual_tokens.newline_rows);
      const d = model.dims.hidden;
      for (const [row, values] of Object.entries(c.visual_tokens.rows)) {
        const r = Number(row);
        expect(relativeError(visual.features.subarray(r * d, (r + 1) * d), values), `visual row ${r}`).toBeLessThan(RELATIVE);
      }
    });

    it('prefill: every layer output and the last logits within 1e-4 relative; the same greedy answer', async () => {
      const d = model.dims.hidden;
      const outputs: Float32Array[] = [];
      const result = await prefill(model, input, { onLayerOutput: (_l, hidden) => outputs.push(hidden.slice()) });
      c.layer_outputs.forEach((expected, l) => {
        for (const [row, values] of Object.entries(expected.rows)) {
          const r = Number(row);
          expect(relativeError(outputs[l].subarray(r * d, (r + 1) * d), values), `layer ${l + 1} row ${r}`).toBeLessThan(RELATIVE);
        }
      });
      expect(relativeError(result.logits, c.prefill_logits_last)).toBeLessThan(RELATIVE);
      const answer = await generate(model, model.tokenizer, input, { maxTokens: c.greedy.ids.length, eosTokenIds: model.eosTokenIds });
      expect(answer.tokenIds).toEqual(c.greedy.ids.slice(0, answer.tokenIds.length));
      expect(answer.tokenIds.length === c.greedy.ids.length || model.eosTokenIds.includes(answer.tokenIds.at(-1)!)).toBe(true);
    });

    it('TransPrune-High: the same schedule, stage counts floor(N r) and kept tokens as the PyTorch reference', async () => {
      const spec = parseMethod('transprune-high');
      const numLayers = model.dims.numLayers;
      const { accumulate, prune, ratios } = resolveSchedule(
        spec.llm as Parameters<typeof resolveSchedule>[0],
        numLayers,
        model.pruningOverrides,
      );
      expect({ accumulate, prune, ratios }).toEqual(c.transprune_high.schedule);
      const recorder = new TraceRecorder({
        model: model.traceModel,
        provider: 'cpu',
        image: null,
        prompt: { textTokens: input.ids.length - 1, visualTokens: visual.count, instructionTokens: 0, visualStart: 0 },
        method: spec,
        flopsModel: model.flopsModelFor(visual),
      });
      const run = await prefill(model, input, {
        method: createMethod(spec, { numLayers, pruning: model.pruningOverrides }, recorder),
        positions: positionPolicy(spec.llm),
      });
      run.layerMs.forEach((ms, l) => recorder.layer(l, run.visualCounts[l], run.cacheLength[l], ms));
      const stages = recorder.finish({ answer: '', generatedTokens: 0 }).layers.filter((l) => l.kept);
      expect(stages.map((l) => [l.layer, l.kept!.length])).toEqual(c.transprune_high.stages.map((s) => [s.after_layer, s.keep]));
      stages.forEach((l, i) => expect(l.kept, `stage after layer ${l.layer}`).toEqual(keptFromHex(c.transprune_high.stages[i].kept_hex)));
      const best = run.logits.reduce((top, v, i, all) => (v > all[top] ? i : top), 0);
      expect(best).toBe(c.transprune_high.answer_token);
    });
  });
});
