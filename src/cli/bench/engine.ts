import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { makeSyntheticCheckpoint, type CheckpointShape } from '../../engine/checkpoint/synthetic.js';
import { writeFileAtomic } from '../../engine/io/files.js';
import { importCheckpoint } from '../../engine/pack/import.js';
import { MANIFEST_FILE, loadManifest, type PackManifest } from '../../engine/pack/manifest.js';
import { listPacks } from '../../engine/pack/store.js';
import { fullFlops } from '../../engine/pruning/flops.js';
import { encodeChat } from '../../engine/text/chat.js';
import { Decoder } from '../../engine/runtime/decode.js';
import { encodeImage } from '../../engine/runtime/graphs.js';
import { LoadedModel } from '../../engine/runtime/model.js';
import { prefill, type PrefillInput, type PrefillResult, type VisualTokens } from '../../engine/runtime/prefill.js';
import { createMethod } from '../../engine/pruning/index.js';
import { TraceRecorder } from '../../engine/trace/recorder.js';
import { positionPolicy, type MethodSpec } from '../../shared/pruning.js';
import type { Trace } from '../../shared/trace.js';
import { encodeVisual } from '../../engine/runtime/vision.js';
import { prepareImage } from '../../engine/image/anyres.js';
import { preprocessQwen } from '../../engine/image/qwen.js';
import { encodeQwenVisual } from '../../engine/runtime/qwen-vision.js';
import { LLAVA_NEXT_DEFAULT_PINPOINTS, visionOf } from '../../engine/model/config.js';
import type { ModelConfig } from '../../engine/model/qwen-config.js';
import { SessionFactory } from '../../engine/runtime/providers.js';
import { measureGemmPeak, median } from './gemm.js';
import { integerOr, providerFromArgs, providerOptions } from '../run-options.js';
import { printTable } from '../table.js';
import { writeBenchResult } from './results.js';
import { modelShapeOptions, type BenchSuite } from './suite.js';
import { RunTimer } from './timed.js';

/**
 * `bench engine`: an unpruned prefill of 576 visual tokens on a model made for the run
 * (hidden >= 512, >= 12 layers, a one-layer vision tower since only the decoder is timed), its achieved
 * GFLOP/s against ONNX Runtime's GEMM peak measured in the same process, and the share of a decode step
 * spent outside session.run.
 */

/** A benchmark model's decoder; the vision tower is always tiny (two 32-wide layers) since only the decoder is timed. */
export interface BenchModelShape {
  hidden: number;
  layers: number;
  /** Default: LLaVA's ratio, 8/3 of hidden rounded to 64 (11008 for 4096). */
  intermediate?: number;
  dtype: 'fp32' | 'fp16';
  /**
   * Import only this many layers and let the pack repeat their graphs up to `layers` (each layer still
   * gets its own session and its own copy of the weights). Timing depends on shapes, not on values, and
   * making 6.7 B random weights in JavaScript would take longer than a GPU machine's command may run.
   */
  distinctLayers?: number;
  /** 'llava-next': AnyRes with LLaVA-NeXT's resolutions; benchPrompt then gives it a 672 x 672 image (2928 visual tokens). */
  arch?: BenchArch;
}

export type BenchArch = 'llava' | 'llava-next';

/** 336 px / patch 14 = 24 x 24 = 576 visual tokens per view, as LLaVA-1.5 and each LLaVA-NeXT tile. */
const IMAGE = { imageSize: 336, patchSize: 14 };

/** Makes (once, cached under .cache/bench) and imports a random-weight checkpoint of the given decoder shape. */
export async function benchPack(shape: BenchModelShape): Promise<string> {
  const intermediate = shape.intermediate ?? Math.round((shape.hidden * 8) / 3 / 64) * 64;
  const distinct = Math.min(shape.layers, shape.distinctLayers ?? shape.layers);
  const next = shape.arch === 'llava-next';
  const name = `bench-h${shape.hidden}-l${shape.layers}${distinct < shape.layers ? `of${distinct}` : ''}-m${intermediate}-${shape.dtype}${next ? '-next' : ''}`;
  const root = resolve('.cache/bench');
  const cached = (await listPacks(join(root, 'store'))).find((p) => p.name === name);
  if (cached) return cached.path;
  const checkpoint = join(root, 'checkpoints', name);
  const heads = shape.hidden / 128 >= 1 && shape.hidden % 128 === 0 ? shape.hidden / 128 : shape.hidden / 64;
  const tiny: Partial<CheckpointShape> = {
    hidden: shape.hidden,
    intermediate,
    layers: distinct,
    heads,
    kvHeads: heads,
    visionHidden: 32,
    visionIntermediate: 64,
    visionLayers: 2,
    visionHeads: 2,
    ...IMAGE,
  };
  console.error(`making a ${shape.layers}-layer, ${shape.hidden}-wide ${shape.dtype} checkpoint in ${checkpoint}`);
  await makeSyntheticCheckpoint(checkpoint, {
    ...tiny,
    dtype: shape.dtype,
    ...(next ? { gridPinpoints: LLAVA_NEXT_DEFAULT_PINPOINTS } : {}),
  });
  console.error('importing it');
  const { dir } = await importCheckpoint(checkpoint, join(root, 'store'), { name, dtype: shape.dtype });
  if (distinct < shape.layers) await repeatLayers(dir, shape.layers);
  return dir;
}

/** Rewrites a benchmark pack's manifest so its layer (and probe) graphs repeat, in order, up to `layers`. */
async function repeatLayers(dir: string, layers: number): Promise<void> {
  const manifest = await loadManifest(dir);
  const cycle = <T>(items: T[]) => Array.from({ length: layers }, (_, l) => items[l % items.length]);
  const repeated: PackManifest = {
    ...manifest,
    config: withTextLayers(manifest.config, layers),
    graphs: { ...manifest.graphs, layers: cycle(manifest.graphs.layers), probes: cycle(manifest.graphs.probes) },
  };
  await writeFileAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify(repeated, null, 2)}\n`);
}

function withTextLayers<C extends ModelConfig>(config: C, layers: number): C {
  return { ...config, text: { ...config.text, numLayers: layers } };
}

/** A LLaVA prompt with the image placeholder, and the visual tokens of a random image. */
/** A benchmark prompt; its visual tokens also say how many views the vision tower ran (for the FLOPs). */
export type BenchPrompt = PrefillInput & { visual: VisualTokens & { views: number } };

export interface TracedPrefill {
  prefillMs: number;
  result: PrefillResult;
  /** The prefill's trace as the app records it: per-layer counts and FLOPs, scoring time. */
  trace: Trace;
}

/** One method's prefill on the bench prompt, timed and traced (no answer: prefill only). */
export async function tracedPrefill(model: LoadedModel, input: BenchPrompt, spec: MethodSpec): Promise<TracedPrefill> {
  const visualStart = input.ids.indexOf(input.imageTokenId!);
  const recorder = new TraceRecorder({
    model: model.traceModel,
    provider: model.provider.active,
    image: null,
    prompt: {
      textTokens: input.ids.length - 1,
      visualTokens: input.visual.count,
      instructionTokens: input.ids.length - 1 - visualStart,
      visualStart,
    },
    method: spec,
    flopsModel: model.flopsModelFor(input.visual),
  });
  const method = createMethod(spec, { numLayers: model.dims.numLayers, pruning: model.pruningOverrides }, recorder);
  const start = performance.now();
  const result = await prefill(model, input, { method, positions: positionPolicy(spec.llm, model.dims) });
  const prefillMs = performance.now() - start;
  result.layerMs.forEach((ms, l) => recorder.layer(l, result.visualCounts[l], result.cacheLength[l], ms));
  recorder.setTimes({ prefill: prefillMs });
  return { prefillMs, result, trace: recorder.finish({ answer: '', generatedTokens: 0 }) };
}

export async function benchPrompt(model: LoadedModel): Promise<BenchPrompt> {
  const question = 'What is in the image? Describe the colour of the sky and how many cars are on the left.';
  const { ids } = encodeChat(model.tokenizer, [{ role: 'user', text: question, image: true }], {
    template: model.chatTemplate,
    content: model.chatContent,
    imageTokenId: model.imageTokenId,
  });
  return { ids, imageTokenId: model.imageTokenId, visual: await benchImage(model) };
}

/**
 * The visual tokens the benchmarks prefill. LLaVA-1.5: a pattern straight into the vision tower (576 tokens).
 * LLaVA-NeXT: a 672 x 672 image through AnyRes (base view + 2 x 2 tiles, nothing unpadded, a newline per
 * row: 576 + 48 x 48 + 48 = 2928 tokens, the most its default resolutions give; the paper's nominal N is 2880).
 * Qwen2.5-VL: a 1024 x 768 image, 37 x 27 = 999 tokens at the checkpoint's max_pixels (the qwen2.5-vl-7b FLOPs preset).
 */
async function benchImage(model: LoadedModel): Promise<VisualTokens & { views: number }> {
  const { qwen } = model;
  if (qwen) {
    const png = await patternPng(1024, 768);
    const prepared = await preprocessQwen(png, model.qwenImage, qwen.vision.windowSize);
    return encodeQwenVisual(model, prepared, qwen.vision.spatialMergeSize);
  }
  const size = visionOf(model.config).imageSize;
  if (!model.config.anyres) {
    const pixels = Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.37));
    return { ...(await encodeImage(model, pixels, size)), views: 1 };
  }
  const { features, count, views } = await encodeVisual(
    model,
    await prepareImage(await patternPng(2 * size, 2 * size), model.clip, model.viewSpec),
  );
  return { features, count, views };
}

/** A width x height PNG of a smooth pattern (no photo needed; the tokens' values do not change the work). */
async function patternPng(width: number, height: number): Promise<Uint8Array> {
  const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => Math.round(127.5 + 127.5 * Math.sin(i * 0.37)));
  return new Uint8Array(
    await sharp(rgb, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

/** FLOPs of an unpruned prefill's decoder layers and LM head (what `prefill` runs after the vision tower). */
export function prefillFlops(model: LoadedModel, input: PrefillInput): number {
  const visual = input.visual?.count ?? 0;
  const f = fullFlops(
    {
      visualPerLayer: Array(model.dims.numLayers).fill(visual),
      textTokens: input.ids.length - 1,
      visionTokens: visual,
      ttvLayers: [],
      probes: [],
      diversity: false,
    },
    model.flopsModel,
  );
  return f.decoder + f.head;
}

/** Median decode-step time and the share of it spent outside session.run. */
export async function measureDecode(
  model: LoadedModel,
  input: PrefillInput,
  steps: number,
): Promise<{ stepMs: number; outsideShare: number; runCalls: number }> {
  const prefilled = await prefill(model, input);
  const timer = new RunTimer();
  const decoder = new Decoder(timer.model(model), prefilled);
  await decoder.step(1); // warm-up: first use of the decode shapes
  timer.reset();
  const outside: number[] = [];
  const stepTimes = await timeDecodeSteps(decoder, steps, (ms) => {
    outside.push((ms - timer.ms) / ms);
    timer.reset();
  });
  return { stepMs: median(stepTimes), outsideShare: median(outside), runCalls: timer.calls };
}

/** Milliseconds of each of `steps` decode steps (token ids cycle, so the answer never ends early). */
export async function timeDecodeSteps(decoder: Decoder, steps: number, afterStep?: (ms: number) => void): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    await decoder.step(2 + (i % 50));
    times.push(performance.now() - start);
    afterStep?.(times[i]);
  }
  return times;
}

export const engineBench: BenchSuite = {
  summary: 'prefill GFLOP/s against the measured ONNX Runtime GEMM peak, and decode time outside session.run',
  usage: 'bench engine [--hidden 512] [--layers 12] [--runs 5] [--decode-steps 16] [--threads n] [--ep cpu]',
  options: {
    ...modelShapeOptions,
    'decode-steps': { type: 'string' },
    ...providerOptions,
  },
  async run(values) {
    const shape: BenchModelShape = {
      hidden: integerOr(values.hidden, '--hidden', 512),
      layers: integerOr(values.layers, '--layers', 12),
      dtype: 'fp32',
    };
    const runs = integerOr(values.runs, '--runs', 5);
    const { ep, threads } = providerFromArgs(values, 'cpu');
    const packDir = await benchPack(shape);
    const model = await LoadedModel.load(packDir, { ep, threads });
    try {
      const input = await benchPrompt(model);
      await prefill(model, input); // warm-up
      const times: number[] = [];
      const layerTimes: number[][] = [];
      for (let i = 0; i < runs; i++) {
        const start = performance.now();
        const result = await prefill(model, input);
        times.push(performance.now() - start);
        layerTimes.push(result.layerMs);
      }
      // Best of the runs against the best GEMM run: both are what the machine can do, on a CPU shared with other work.
      const prefillMs = Math.min(...times);
      const flops = prefillFlops(model, input);
      const achieved = flops / (prefillMs / 1000) / 1e9;
      const seqLen = input.ids.length - 1 + (input.visual?.count ?? 0);
      const t = model.config.text;
      const factory = new SessionFactory(model.provider.active, { threads });
      const peaks = [
        await measureGemmPeak(factory, seqLen, t.hiddenSize, t.intermediateSize),
        await measureGemmPeak(factory, 2048, 2048, 2048),
      ];
      const peak = peaks.reduce((a, b) => (b.gflops > a.gflops ? b : a));
      const decode = await measureDecode(model, input, integerOr(values['decode-steps'], '--decode-steps', 16));

      console.log(
        `\nbench engine: ${shape.layers} layers, hidden ${shape.hidden}, ${seqLen} prefill tokens (${input.visual?.count} visual), provider ${model.provider.active}, threads ${threads ?? 'ORT default'}\n`,
      );
      printTable(
        ['measure', 'value', 'aim'],
        [
          [`prefill ms (best of ${runs}; median ${median(times).toFixed(0)})`, prefillMs, ''],
          ['prefill GFLOP (decoder + head)', flops / 1e9, ''],
          ['achieved GFLOP/s', achieved, ''],
          [`GEMM peak GFLOP/s (${peak.m}x${peak.k}x${peak.n})`, peak.gflops, ''],
          ['achieved / peak', `${((100 * achieved) / peak.gflops).toFixed(1)}%`, '>= 50%'],
          ['decode step ms (median)', decode.stepMs, ''],
          ['decode time outside session.run', `${(100 * decode.outsideShare).toFixed(1)}%`, '<= 10%'],
        ],
      );
      const path = await writeBenchResult('engine', {
        shape,
        seqLen,
        visualTokens: input.visual?.count,
        provider: model.provider,
        threads: threads ?? null,
        runs,
        prefillMs,
        prefillMedianMs: median(times),
        prefillRunsMs: times,
        layerMs: layerTimes[layerTimes.length - 1],
        prefillFlops: flops,
        achievedGflops: achieved,
        gemmPeaks: peaks,
        peakGflops: peak.gflops,
        ratio: achieved / peak.gflops,
        decodeStepMs: decode.stepMs,
        decodeOutsideRunShare: decode.outsideShare,
        decodeRunCallsPerStep: decode.runCalls,
      });
      console.log(`\nwritten ${path}`);
    } finally {
      await model.dispose();
    }
  },
};
