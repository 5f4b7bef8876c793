import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMethod, positionPolicy, type MethodSpec } from '../../src/shared/pruning.js';
import { readTrace, traceToJson } from '../../src/shared/trace-files.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { createMethod, type PruningMethod } from '../../src/engine/pruning/index.js';
import { generate } from '../../src/engine/runtime/generate.js';
import { LoadedModel } from '../../src/engine/runtime/model.js';
import { prefill, prefillBranches, type PrefillInput } from '../../src/engine/runtime/prefill.js';
import type { ModelSessions, RunnableSession } from '../../src/engine/runtime/graphs.js';
import { TraceRecorder } from '../../src/engine/trace/recorder.js';
import { loadReferenceModel, type ReferenceModel } from '../helpers/reference.js';
import { referencePrunedForward, type PrunedRun } from '../helpers/reference-pruned.js';
import { relativeError } from '../helpers/diff.js';
import { referenceMethod } from '../helpers/reference-method.js';
import { makeTinyPack } from '../helpers/tiny-pack.js';
import { singleViewLayout } from '../../src/shared/trace.js';

/**
 * Pruning on a real imported pack (14 layers, grouped-query attention, 8x8 = 64 visual tokens) against
 * the independent float64 pruned reference (tests/helpers/reference-pruned.ts): identical kept indices
 * at every stage, identical per-layer visual counts and KV lengths, close scores and logits, the same
 * greedy answer; plus the invariants of method spec §8 that need a model.
 */

const LAYERS = 14;
const NEW_TOKENS = 5;
const TOLERANCE = 1e-4;

const root = mkdtempSync(join(tmpdir(), 'tps-transprune-'));
let checkpoint: string;
let model: LoadedModel;
let reference: ReferenceModel;
let pixels: Float32Array;
let input: PrefillInput;

beforeAll(async () => {
  ({ checkpoint, model, pixels, input } = await makeTinyPack(root, {
    name: 'tiny14',
    preset: 'tiny-gqa',
    layers: LAYERS,
    imageSize: 56,
    patchSize: 7,
    seed: 3,
    question: 'What is the colour of the sky in this image?',
    pixels: (size) => Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.31) * 1.2 + Math.cos(i * 0.07) * 0.6),
  }));
  reference = loadReferenceModel(checkpoint);
});

afterAll(async () => {
  await model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

function recorderFor(spec: MethodSpec): TraceRecorder {
  const prompt = input.ids.length - 1;
  const at = input.ids.indexOf(input.imageTokenId!);
  return new TraceRecorder({
    model: model.traceModel,
    provider: model.provider.active,
    image: {
      hash: 'test',
      width: 56,
      height: 56,
      modelWidth: 56,
      modelHeight: 56,
      grid: { rows: 8, cols: 8 },
      layout: singleViewLayout({ x: 0, y: 0, width: 56, height: 56 }, { rows: 8, cols: 8 }),
    },
    prompt: { textTokens: prompt, visualTokens: 64, instructionTokens: prompt - at, visualStart: at },
    method: spec,
    flopsModel: model.flopsModel,
  });
}

/** Counts the boundaries the runtime hands the method (pruning must only ever see prefill). */
function counting(method: PruningMethod): PruningMethod & { calls: number } {
  const wrapped = {
    ...method,
    calls: 0,
    afterLayer: (b: Parameters<PruningMethod['afterLayer']>[0]) => {
      wrapped.calls++;
      return method.afterLayer(b);
    },
  };
  return wrapped;
}

async function runBoth(text: string) {
  const spec = parseMethod(text);
  const dims = { numLayers: LAYERS, pruning: model.pruningOverrides };
  const positions = positionPolicy(spec.llm);
  const recorder = recorderFor(spec);
  const pre = await prefill(model, input, { method: createMethod(spec, dims, recorder), positions });
  const method = counting(createMethod(spec, dims));
  const answer = await generate(model, model.tokenizer, input, { maxTokens: NEW_TOKENS, method, positions });
  pre.layerMs.forEach((ms, l) => recorder.layer(l, pre.visualCounts[l], pre.cacheLength[l], ms));
  const trace = recorder.finish({ answer: answer.text, generatedTokens: answer.tokenIds.length });
  const expected: PrunedRun = referencePrunedForward(
    reference,
    { inputIds: input.ids, pixelValues: pixels, maxNewTokens: NEW_TOKENS },
    referenceMethod(spec.llm, LAYERS),
  );
  return { spec, pre, answer, trace, expected, calls: method.calls };
}

describe('pruned engine vs the float64 pruned reference (14-layer GQA pack, N = 64)', () => {
  it.each([
    'transprune@7-12/7,9,12/0.875,0.625,0.125', // the paper's schedule, unscaled
    'transprune-high', // depth-scaled: 3-5 / 3,4,5
    'transprune-high:direction=paper',
    'transprune-low:positions=original',
    'transprune@2-9/3,6,9/0.75,0.5,0.25:alpha=0.3',
    'ttv',
    'iga',
    'fastv:k=3,r=0.75',
    'pdrop',
  ])('%s: same kept indices per stage, counts, KV lengths, logits and answer', async (text) => {
    const { pre, answer, trace, expected, calls } = await runBoth(text);
    const stages = trace.layers.filter((l) => l.kept);
    expect(stages.length).toBeGreaterThan(0);
    expect(stages.map((l) => l.layer)).toEqual(expected.stages.map((s) => s.layer));
    stages.forEach((l, i) => expect(l.kept, `stage after layer ${l.layer}`).toEqual(Array.from(expected.stages[i].keptOriginal)));
    expect(pre.visualCounts).toEqual(expected.visualCountPerLayer);
    expect(pre.cacheLength).toEqual(expected.prefillLenPerLayer);
    expect(relativeError(pre.logits, expected.logits.data.subarray(expected.logits.data.length - pre.logits.length))).toBeLessThan(
      TOLERANCE,
    );
    expect(answer.tokenIds).toEqual(expected.tokens.slice(0, answer.tokenIds.length));
    // Scores the selection ran on match the reference's within float32 accuracy.
    stages.forEach((l, i) => expect(relativeError(l.scores!.score!, expected.stages[i].score)).toBeLessThan(1e-3));
    // Prefill only: one boundary per layer during generate, none from its decode steps.
    expect(answer.tokenIds.length).toBeGreaterThan(1);
    expect(calls).toBe(LAYERS);
    expect(readTrace(traceToJson(trace))).toEqual(trace);
  });

  it('TransPrune with every ratio 1.0 (or no pruning layer) equals the unpruned model exactly', async () => {
    const none = await prefill(model, input);
    const noneAnswer = await generate(model, model.tokenizer, input, { maxTokens: NEW_TOKENS });
    for (const text of ['transprune@2-6/2,4,6/1,1,1', 'transprune@2-6/2,4,6/1,1,1:positions=original']) {
      const spec = parseMethod(text);
      const method = createMethod(spec, { numLayers: LAYERS });
      const pre = await prefill(model, input, { method, positions: positionPolicy(spec.llm) });
      expect(Array.from(pre.logits)).toEqual(Array.from(none.logits));
      expect(pre.cacheLength).toEqual(none.cacheLength);
      const answer = await generate(model, model.tokenizer, input, { maxTokens: NEW_TOKENS, method, positions: positionPolicy(spec.llm) });
      expect(answer.tokenIds).toEqual(noneAnswer.tokenIds);
    }
  });

  it("the layer after each probe takes the probe's k_proj rows of the tokens it keeps, alone and in a compare", async () => {
    const probed: number[] = [];
    const givenRows: number[][] = [];
    const sessions: ModelSessions = {
      dims: model.dims,
      embed: model.embed,
      vision: model.vision,
      head: model.head,
      probe: (layer) => {
        probed.push(layer);
        return model.probe(layer);
      },
      layers: model.layers.map((session, layer) => ({
        run: ((feeds: Record<string, Tensor>, ...rest: unknown[]) => {
          (givenRows[layer] ??= []).push(feeds.known_key_proj.dims[1]);
          return (session.run as (...args: unknown[]) => unknown)(feeds, ...rest);
        }) as RunnableSession['run'],
      })),
    };
    const spec = parseMethod('transprune-high');
    const method = () => createMethod(spec, { numLayers: LAYERS, pruning: model.pruningOverrides });
    const alone = await prefill(sessions, input, { method: method() });
    expect(probed.length).toBeGreaterThan(0);
    for (let l = 0; l < LAYERS; l++) expect(givenRows[l], `layer ${l}`).toEqual([probed.includes(l) ? alone.cacheLength[l] : 0]);

    // none beside it: the layers before the first prune run once. That probe ran on none's sequence too, so
    // none's next layer takes all its rows and the pruned branch the kept ones; later probes are the pruned branch's.
    givenRows.length = 0;
    const { branches } = await prefillBranches(sessions, input, [{}, { method: method() }]);
    const [none, pruned] = branches;
    const expected = (l: number) => {
      if (l < probed[0]) return [0];
      if (l === probed[0]) return [none.cacheLength[l], pruned.cacheLength[l]];
      return probed.includes(l) ? [pruned.cacheLength[l], 0] : [0, 0];
    };
    for (let l = 0; l < LAYERS; l++)
      expect(
        givenRows[l].toSorted((a, b) => b - a),
        `layer ${l}`,
      ).toEqual(expected(l));
    expect(Array.from(pruned.logits)).toEqual(Array.from(alone.logits));
    expect(Array.from(none.logits)).toEqual(Array.from((await prefill(model, input)).logits));
  });

  it('prunes nothing before the first pruning layer: the prefix layers see the unpruned sequence (§8.2)', async () => {
    const hidden = new Map<number, Float32Array>();
    await prefill(model, input, {
      onLayerOutput: (l, h) => {
        if (l < 6) hidden.set(l, h.slice());
      },
    });
    const spec = parseMethod('transprune@7-12/7,9,12/0.875,0.625,0.125');
    await prefill(model, input, {
      method: createMethod(spec, { numLayers: LAYERS }),
      onLayerOutput: (l, h) => {
        if (l < 6) expect(Array.from(h)).toEqual(Array.from(hidden.get(l)!));
      },
    });
  });

  it('a schedule override in the pack manifest replaces the preset for that model', async () => {
    const overrides = { presets: { 'transprune-high': { accumulate: [2, 3], prune: [2, 3], ratios: [0.5, 0.25] } } };
    const pack = await importCheckpoint(checkpoint, join(root, 'store-override'), { name: 'tiny14', dtype: 'fp32', pruning: overrides });
    const overridden = await LoadedModel.load(pack.dir, { ep: 'cpu' });
    try {
      expect(overridden.pruningOverrides).toEqual(overrides);
      const method = createMethod(parseMethod('transprune-high'), { numLayers: LAYERS, pruning: overridden.pruningOverrides });
      const pre = await prefill(overridden, input, { method });
      expect(pre.visualCounts).toEqual([64, 64, 32, ...Array(LAYERS - 3).fill(16)]);
      const expected = referencePrunedForward(
        reference,
        { inputIds: input.ids, pixelValues: pixels },
        { kind: 'transprune', ...overrides.presets['transprune-high'] },
      );
      expect(Array.from(pre.keptOriginal)).toEqual(Array.from(expected.stages[1].keptOriginal));
    } finally {
      await overridden.dispose();
    }
  });

  it('DivPrune before the LLM: the in-LLM ratios apply to the tokens it passed on, kept sets nest inside it', async () => {
    const spec = parseMethod('divprune:count=32+transprune-high');
    const recorder = recorderFor(spec);
    const pre = await prefill(model, input, { method: createMethod(spec, { numLayers: LAYERS }, recorder) });
    pre.layerMs.forEach((ms, l) => recorder.layer(l, pre.visualCounts[l], pre.cacheLength[l], ms));
    const trace = recorder.finish({ answer: '', generatedTokens: 0 });
    expect(pre.visualCounts).toEqual([32, 32, 32, 28, 20, ...Array(LAYERS - 5).fill(4)]);
    expect(trace.projectorKept).toHaveLength(32);
    expect(pre.keptOriginal.every((k) => trace.projectorKept!.includes(k))).toBe(true);
  });

  it('trace FLOPs follow the recorded per-layer counts', async () => {
    const { trace, pre } = await runBoth('transprune-high');
    expect(trace.layers.map((l) => l.visualIn)).toEqual(pre.visualCounts);
    const d = model.dims.hidden,
      m = model.config.text.intermediateSize;
    const eq7 = pre.visualCounts.reduce((s, n) => s + 4 * n * d * d + 2 * n * n * d + 3 * n * d * m, 0);
    expect(trace.totals.flops.paper).toBe(eq7);
    expect(trace.totals.flops.paperUnpruned).toBe(LAYERS * (4 * 64 * d * d + 2 * 64 * 64 * d + 3 * 64 * d * m));
    expect(trace.totals.flops.full).toBeLessThan(trace.totals.flops.fullUnpruned);
  });
});
