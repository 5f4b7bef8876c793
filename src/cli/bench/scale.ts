import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { formatMethod, parseMethod, type MethodSpec } from '../../shared/pruning.js';
import { CHECKPOINT_PRESETS, makeSyntheticCheckpoint, type CheckpointPreset } from '../../engine/checkpoint/synthetic.js';
import {
  isQwenPreset,
  makeSyntheticQwenCheckpoint,
  QWEN_CHECKPOINT_PRESETS,
  type QwenCheckpointPreset,
} from '../../engine/checkpoint/synthetic-qwen.js';
import { importCheckpoint } from '../../engine/pack/import.js';
import type { WeightDtype } from '../../engine/onnx/weight-file.js';
import { listPacks } from '../../engine/pack/store.js';
import { Decoder } from '../../engine/runtime/decode.js';
import { LoadedModel } from '../../engine/runtime/model.js';
import { CliError } from '../command.js';
import { integerOr, providerFromArgs, providerOptions } from '../run-options.js';
import { printTable } from '../table.js';
import { benchPrompt, timeDecodeSteps, tracedPrefill } from './engine.js';
import { median } from './gemm.js';
import { writeBenchResult } from './results.js';
import type { BenchSuite } from './suite.js';

/**
 * `bench scale`: a real model shape (LLaVA-1.5-7B by default) with random weights, made once with
 * `make-checkpoint`'s writer and imported at the asked dtype (both cached under .cache/scale), then per
 * method: vision, prefill, first token, decode tokens/s, the weight bytes a decode step reads per second
 * against this machine's copy bandwidth, and peak RSS. With `--llama-bench` and `--gguf`, llama.cpp's
 * llama-bench runs the same prompt and generation lengths and its figures are printed beside ours.
 */

const DTYPES: WeightDtype[] = ['int4', 'int8', 'fp16', 'fp32'];
const DEFAULT_METHODS = ['none', 'transprune-high', 'fastv'];

interface MethodRow {
  method: string;
  visionMs: number;
  prefillMs: number;
  /** The method's scoring inside the prefill (TTV, probes, selection). */
  scoringMs: number;
  firstTokenMs: number;
  decodeMsPerToken: number;
  decodeTokensPerSecond: number;
  weightGBps: number;
  peakRssBytes: number | null;
  /** Visual tokens entering the decoder, and left after the last prune. */
  visualTokens: number;
  visualTokensAtEnd: number;
}

export const scaleBench: BenchSuite = {
  summary: 'a 7B (or other preset) random-weight model: prefill, first token, decode tok/s, GB/s against copy bandwidth, peak RSS',
  usage:
    'bench scale [--shape llava-1.5-7b|llava-1.5-13b|qwen2.5-vl-7b|tiny-qwen|bench] [--dtype int4|int8|fp16|fp32] [--methods none,transprune-high,fastv]\n' +
    '         [--decode-steps 16] [--threads n] [--llama-bench PATH --gguf PATH]',
  options: {
    shape: { type: 'string' },
    dtype: { type: 'string' },
    methods: { type: 'string' },
    'decode-steps': { type: 'string' },
    'llama-bench': { type: 'string' },
    gguf: { type: 'string' },
    ...providerOptions,
  },
  async run(values) {
    const shape = String(values.shape ?? 'llava-1.5-7b');
    if (!(shape in CHECKPOINT_PRESETS) && !isQwenPreset(shape))
      throw new CliError(
        `--shape must be one of ${[...Object.keys(CHECKPOINT_PRESETS), ...Object.keys(QWEN_CHECKPOINT_PRESETS)].join(', ')}`,
      );
    const dtype = String(values.dtype ?? 'int4') as WeightDtype;
    if (!DTYPES.includes(dtype)) throw new CliError(`--dtype must be one of ${DTYPES.join(', ')}`);
    if ((values['llama-bench'] === undefined) !== (values.gguf === undefined)) throw new CliError('--llama-bench and --gguf go together');
    const specs = String(values.methods ?? DEFAULT_METHODS.join(','))
      .split(',')
      .map((m) => parseMethod(m.trim()));
    const steps = integerOr(values['decode-steps'], '--decode-steps', 16);
    const { ep, threads } = providerFromArgs(values, 'cpu');

    const packDir = await scalePack(shape as CheckpointPreset | QwenCheckpointPreset, dtype);
    const weightBytes = await decodeWeightBytes(packDir);
    const loadStart = performance.now();
    const model = await LoadedModel.load(packDir, { ep, threads });
    const loadMs = performance.now() - loadStart;
    const rows: MethodRow[] = [];
    let promptTokens = 0;
    try {
      for (const spec of specs) {
        const row = await runMethod(model, spec, steps, weightBytes);
        rows.push(row.row);
        promptTokens = row.promptTokens;
      }
    } finally {
      await model.dispose();
    }
    // Measured last: its two 1 GiB buffers would otherwise count in the import's and the methods' peak RSS.
    const copyGBps = measureCopyBandwidth();
    const llama =
      values['llama-bench'] === undefined
        ? undefined
        : await runLlamaBench(String(values['llama-bench']), String(values.gguf), promptTokens, steps, threads);

    console.log(
      `\nbench scale: ${shape}, ${dtype} pack (${gb(weightBytes)} GB read per decode step), ${promptTokens} prompt tokens, ` +
        `${steps} decode steps, provider ${model.provider.active}, threads ${threads ?? 'ORT default'}; load ${(loadMs / 1000).toFixed(1)} s; ` +
        `copy bandwidth ${copyGBps.toFixed(1)} GB/s (read + write)\n`,
    );
    printTable(
      [
        'method',
        'visual tokens',
        'vision s',
        'prefill s',
        'scoring',
        'first token s',
        'decode ms/token',
        'decode tok/s',
        'GB/s',
        'of copy bw',
        'peak RSS GB',
        'RSS / weights',
      ],
      rows.map((r) => [
        r.method,
        `${r.visualTokens}→${r.visualTokensAtEnd}`,
        r.visionMs / 1000,
        r.prefillMs / 1000,
        `${((100 * r.scoringMs) / r.prefillMs).toFixed(1)}%`,
        r.firstTokenMs / 1000,
        r.decodeMsPerToken,
        r.decodeTokensPerSecond,
        r.weightGBps,
        `${((100 * r.weightGBps) / copyGBps).toFixed(0)}%`,
        r.peakRssBytes === null ? 'n/a' : gb(r.peakRssBytes),
        r.peakRssBytes === null ? 'n/a' : `${(r.peakRssBytes / weightBytes).toFixed(2)}x`,
      ]),
    );
    if (llama) {
      const none = rows.find((r) => r.method === 'none') ?? rows[0];
      const ourPrefill = promptTokens / (none.prefillMs / 1000);
      console.log(`\nllama.cpp (${llama.model}, ${llama.threads} threads) against ${none.method}:\n`);
      printTable(
        ['measure', 'llama.cpp', 'this engine', 'this / llama.cpp'],
        [
          [
            `prefill tok/s (${promptTokens} tokens)`,
            llama.prefillTokensPerSecond,
            ourPrefill,
            `${(ourPrefill / llama.prefillTokensPerSecond).toFixed(2)}x`,
          ],
          [
            `decode tok/s (${steps} tokens)`,
            llama.decodeTokensPerSecond,
            none.decodeTokensPerSecond,
            `${(none.decodeTokensPerSecond / llama.decodeTokensPerSecond).toFixed(2)}x`,
          ],
        ],
      );
    }
    const path = await writeBenchResult('scale', {
      shape,
      dtype,
      promptTokens,
      steps,
      threads: threads ?? null,
      loadMs,
      copyGBps,
      weightBytes,
      rows,
      llama,
    });
    console.log(`\nwritten ${path}`);
  },
};

async function runMethod(model: LoadedModel, spec: MethodSpec, steps: number, weightBytes: number) {
  resetPeakRss();
  const visionStart = performance.now();
  const input = await benchPrompt(model);
  const visionMs = performance.now() - visionStart;
  const { prefillMs, result: prefilled, trace } = await tracedPrefill(model, input, spec);
  const decoder = new Decoder(model, prefilled);
  await decoder.step(1); // first use of the decode shapes
  const stepMs = await timeDecodeSteps(decoder, steps);
  const decodeMs = median(stepMs);
  const row: MethodRow = {
    method: formatMethod(spec),
    visionMs,
    prefillMs,
    scoringMs: trace.totals.timesMs.scoring,
    firstTokenMs: visionMs + prefillMs,
    decodeMsPerToken: decodeMs,
    decodeTokensPerSecond: 1000 / decodeMs,
    weightGBps: weightBytes / 1e9 / (decodeMs / 1000),
    peakRssBytes: peakRss(),
    visualTokens: input.visual.count,
    visualTokensAtEnd: prefilled.keptOriginal.length,
  };
  return { row, promptTokens: prefilled.entryLength };
}

/** Makes the preset's checkpoint (fp16, as Hugging Face ships LLaVA) and imports it at `dtype`, each once. */
async function scalePack(shape: CheckpointPreset | QwenCheckpointPreset, dtype: WeightDtype): Promise<string> {
  const root = resolve('.cache/scale');
  const name = `${shape}-${dtype}`;
  const cached = (await listPacks(join(root, 'store'))).find((p) => p.name === name);
  if (cached) return cached.path;
  const checkpoint = join(root, 'checkpoints', shape);
  if (!existsSync(join(checkpoint, 'config.json'))) {
    // Written beside, then renamed: an interrupted run never leaves a half checkpoint to be reused.
    const partial = `${checkpoint}.partial`;
    await rm(partial, { recursive: true, force: true });
    console.error(`making the ${shape} checkpoint (fp16, random weights) in ${checkpoint}: minutes at 7B`);
    const start = performance.now();
    if (isQwenPreset(shape)) await makeSyntheticQwenCheckpoint(partial, { preset: shape, dtype: 'fp16' });
    else await makeSyntheticCheckpoint(partial, { preset: shape, dtype: 'fp16' });
    await rename(partial, checkpoint);
    console.error(`made in ${((performance.now() - start) / 1000).toFixed(0)} s, peak RSS ${gb(peakRss() ?? 0)} GB`);
    resetPeakRss();
  }
  console.error(`importing it as ${dtype}`);
  resetPeakRss();
  const start = performance.now();
  const { dir } = await importCheckpoint(checkpoint, join(root, 'store'), { name, dtype });
  console.error(`imported in ${((performance.now() - start) / 1000).toFixed(0)} s, peak RSS ${gb(peakRss() ?? 0)} GB`);
  return dir;
}

/** Bytes a decode step reads from the weights: every decoder layer's file and the head's (the embedding is one row). */
async function decodeWeightBytes(packDir: string): Promise<number> {
  const files = (await readdir(packDir)).filter((f) => /^(layer_\d+|head)\.bin$/.test(f));
  const sizes = await Promise.all(files.map(async (f) => (await stat(join(packDir, f))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

/** Copy bandwidth (bytes read + written per second) of a 1 GiB copy, best of 5: the ceiling for reading weights. */
export function measureCopyBandwidth(bytes = 2 ** 30): number {
  const source = new Uint8Array(bytes).fill(1);
  const target = new Uint8Array(bytes);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    target.set(source);
    best = Math.min(best, performance.now() - start);
  }
  return (2 * bytes) / 1e9 / (best / 1000);
}

/** Linux: resets the peak-RSS mark so each method's peak is its own (the loaded weights stay counted). */
export function resetPeakRss(): void {
  if (process.platform === 'linux') writeFileSync('/proc/self/clear_refs', '5');
}

/** Peak resident memory since the last reset (Linux) or since the process started. */
export function peakRss(): number | null {
  if (process.platform !== 'linux') return process.resourceUsage().maxRSS * 1024;
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kb === undefined ? null : Number(kb) * 1024;
}

interface LlamaBenchFigures {
  model: string;
  threads: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

/** Runs llama.cpp's llama-bench with our prompt and generation lengths and reads its JSON. */
export async function runLlamaBench(
  binary: string,
  gguf: string,
  promptTokens: number,
  steps: number,
  threads: number | undefined,
): Promise<LlamaBenchFigures> {
  const args = ['-m', gguf, '-p', String(promptTokens), '-n', String(steps), '-o', 'json', ...(threads ? ['-t', String(threads)] : [])];
  console.error(`running ${binary} ${args.join(' ')}`);
  const { stdout } = await promisify(execFile)(binary, args, { maxBuffer: 16 << 20 });
  return parseLlamaBench(stdout);
}

/** llama-bench -o json: one record per test, `n_prompt` > 0 for prefill and `n_gen` > 0 for decode, `avg_ts` in tokens/s. */
export function parseLlamaBench(json: string): LlamaBenchFigures {
  const records = JSON.parse(json) as { model_type?: string; n_threads?: number; n_prompt: number; n_gen: number; avg_ts: number }[];
  const prompt = records.find((r) => r.n_prompt > 0 && r.n_gen === 0);
  const gen = records.find((r) => r.n_gen > 0 && r.n_prompt === 0);
  if (!prompt || !gen) throw new CliError('llama-bench printed no prompt and generation records');
  return {
    model: prompt.model_type ?? 'gguf',
    threads: prompt.n_threads ?? 0,
    prefillTokensPerSecond: prompt.avg_ts,
    decodeTokensPerSecond: gen.avg_ts,
  };
}

const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
