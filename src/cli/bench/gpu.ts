import { parseMethod, positionPolicy } from '../../shared/pruning.js';
import { createMethod } from '../../engine/pruning/index.js';
import { fullFlops } from '../../engine/pruning/flops.js';
import { Decoder } from '../../engine/runtime/decode.js';
import { LoadedModel } from '../../engine/runtime/model.js';
import { prefill, type PrefillInput, type PrefillResult } from '../../engine/runtime/prefill.js';
import { SessionFactory } from '../../engine/runtime/providers.js';
import { benchPack, benchPrompt, timeDecodeSteps, type BenchModelShape } from './engine.js';
import { measureGemmPeak, median } from './gemm.js';
import { integerArg, integerOr, providerFromArgs, providerOptions } from '../run-options.js';
import { printTable } from '../table.js';
import { writeBenchResult } from './results.js';
import { modelShapeOptions, type BenchSuite } from './suite.js';

/**
 * `bench gpu`: prefill and decode of none, fastv, transprune-high and transprune-low in one
 * process on one model (rounds interleaved), their ratios against none, and achieved TFLOP/s against the provider's measured
 * MatMul peak. Full size is LLaVA-1.5-7B's decoder (4096 hidden, 32 layers, 11008 MLP, fp16 weights, 576
 * visual tokens); `--small` is a model this CPU-only machine runs in seconds.
 */

const DEFAULT_METHODS = ['none', 'fastv', 'transprune-high', 'transprune-low'];
const FULL: BenchModelShape = { hidden: 4096, layers: 32, intermediate: 11008, dtype: 'fp16', distinctLayers: 2 };
const SMALL: BenchModelShape = { hidden: 256, layers: 8, dtype: 'fp32' };

interface MethodTiming {
  method: string;
  prefillMs: number;
  decodeStepMs: number;
  visualPerLayer: number[];
  prefillFlops: number;
}

/** One method's prefill as a closure, so rounds can interleave methods (drift then hits all alike). */
function prefillRunner(model: LoadedModel, input: PrefillInput, methodText: string): () => Promise<PrefillResult> {
  const spec = parseMethod(methodText);
  return () =>
    prefill(model, input, {
      method:
        spec.llm.kind === 'none' ? undefined : createMethod(spec, { numLayers: model.dims.numLayers, pruning: model.pruningOverrides }),
      positions: positionPolicy(spec.llm, model.dims),
    });
}

/** Median prefill of each method over `runs` interleaved rounds, then each method's median decode step. */
async function timeMethods(
  model: LoadedModel,
  input: PrefillInput,
  methods: string[],
  runs: number,
  decodeSteps: number,
): Promise<MethodTiming[]> {
  const runners = methods.map((m) => prefillRunner(model, input, m));
  for (const run of runners) await run(); // warm-up: first use of each method's shapes
  const times = methods.map((): number[] => []);
  for (let round = 0; round < runs; round++) {
    for (const [i, run] of runners.entries()) {
      const start = performance.now();
      await run();
      times[i].push(performance.now() - start);
    }
  }
  const results: MethodTiming[] = [];
  for (const [i, run] of runners.entries()) {
    const prefilled = await run();
    const flops = fullFlops(
      {
        visualPerLayer: prefilled.visualCounts,
        textTokens: input.ids.length - 1,
        visionTokens: prefilled.originalVisualCount,
        ttvLayers: [],
        probes: [],
        diversity: false,
      },
      model.flopsModel,
    );
    results.push({
      method: methods[i],
      prefillMs: median(times[i]),
      decodeStepMs: await medianDecodeStep(model, prefilled, decodeSteps),
      visualPerLayer: prefilled.visualCounts,
      prefillFlops: flops.decoder + flops.head,
    });
  }
  return results;
}

async function medianDecodeStep(model: LoadedModel, prefilled: PrefillResult, steps: number): Promise<number> {
  return median(await timeDecodeSteps(new Decoder(model, prefilled), steps));
}

export const gpuBench: BenchSuite = {
  summary: 'LLaVA-1.5-7B-shaped decoder: prefill/decode of none, fastv, transprune-high/low, ratios and TFLOP/s vs peak',
  usage:
    'bench gpu [--small] [--ep auto|cuda|webgpu|cpu] [--methods none,fastv,...] [--runs 3] [--decode-steps 16] [--layers n --hidden n --distinct-layers n]',
  options: {
    small: { type: 'boolean' },
    methods: { type: 'string' },
    ...modelShapeOptions,
    'decode-steps': { type: 'string' },
    'distinct-layers': { type: 'string' },
    ...providerOptions,
  },
  async run(values) {
    const base = values.small ? SMALL : FULL;
    const shape: BenchModelShape = {
      ...base,
      hidden: integerOr(values.hidden, '--hidden', base.hidden),
      layers: integerOr(values.layers, '--layers', base.layers),
      intermediate: values.hidden ? undefined : base.intermediate,
      distinctLayers:
        values['distinct-layers'] === undefined ? base.distinctLayers : integerArg(values['distinct-layers'], '--distinct-layers'),
    };
    const methods = values.methods ? String(values.methods).split(',') : DEFAULT_METHODS;
    const runs = integerOr(values.runs, '--runs', 3);
    const decodeSteps = integerOr(values['decode-steps'], '--decode-steps', 16);
    const { ep, threads } = providerFromArgs(values, 'auto');

    const model = await LoadedModel.load(await benchPack(shape), { ep, threads });
    try {
      const input = await benchPrompt(model);
      const results = await timeMethods(model, input, methods, runs, decodeSteps);
      const t = model.config.text;
      const seqLen = input.ids.length - 1 + (input.visual?.count ?? 0);
      const factory = new SessionFactory(model.provider.active, { threads });
      // The model's own MLP shape and a large square one; the faster is the peak (best of 10 runs each).
      const weightType = shape.dtype === 'fp16' ? 'float16' : 'float32';
      const square = Math.max(1024, t.hiddenSize);
      const peaks = [
        await measureGemmPeak(factory, seqLen, t.hiddenSize, t.intermediateSize, 10, weightType),
        await measureGemmPeak(factory, square, square, square, 10, weightType),
      ];
      const peak = peaks.reduce((a, b) => (b.gflops > a.gflops ? b : a));
      const none = results.find((r) => r.method === 'none') ?? results[0];

      console.log(
        `\nbench gpu: ${t.numLayers} layers, hidden ${t.hiddenSize}, MLP ${t.intermediateSize}, ${shape.dtype} weights, ${seqLen} prefill tokens; provider ${model.provider.active}` +
          `${model.provider.failures.length ? ` (fell back: ${model.provider.failures.map((f) => `${f.provider}: ${f.reason}`).join('; ')})` : ''}\n`,
      );
      printTable(
        ['method', 'visual/layer (first..last)', 'prefill ms', 'vs none', 'decode ms/token', 'vs none', 'TFLOP', 'TFLOP/s', '% of peak'],
        results.map((r) => {
          const tflops = r.prefillFlops / 1e12;
          const rate = tflops / (r.prefillMs / 1000);
          return [
            r.method,
            `${r.visualPerLayer[0]}..${r.visualPerLayer[r.visualPerLayer.length - 1]}`,
            r.prefillMs,
            r.prefillMs / none.prefillMs,
            r.decodeStepMs,
            r.decodeStepMs / none.decodeStepMs,
            tflops,
            rate,
            `${((100 * rate * 1000) / peak.gflops).toFixed(1)}%`,
          ];
        }),
        3,
      );
      console.log(
        `\nMatMul peak on ${model.provider.active}: ${(peak.gflops / 1000).toFixed(3)} TFLOP/s (${peak.m}x${peak.k}x${peak.n}, ${shape.dtype} weights)`,
      );
      const path = await writeBenchResult('gpu', {
        shape: { ...shape, intermediate: t.intermediateSize },
        seqLen,
        provider: model.provider,
        runs,
        decodeSteps,
        peak,
        results,
      });
      console.log(`written ${path}`);
    } finally {
      await model.dispose();
    }
  },
};
