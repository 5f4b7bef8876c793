import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { readGgufHeader } from '../../engine/io/gguf.js';
import { importCheckpoint, type ImportDtype } from '../../engine/pack/import.js';
import { Decoder } from '../../engine/runtime/decode.js';
import { LoadedModel } from '../../engine/runtime/model.js';
import { prefill } from '../../engine/runtime/prefill.js';
import { mulberry32 } from '../../engine/util/mulberry32.js';
import { CliError } from '../command.js';
import { integerOr } from '../run-options.js';
import { printTable } from '../table.js';
import { writeBenchResult } from './results.js';
import { peakRss, resetPeakRss, runLlamaBench } from './scale.js';
import type { BenchSuite } from './suite.js';

/**
 * `bench gguf`: the engine and llama.cpp on the very same GGUF file, in one run, each in its own process (so each
 * peak RSS is its own): prefill of a 512-token prompt and 128 decode steps, 2 threads each. llama.cpp comes from
 * `--llama-bench PATH` (llama.cpp's own benchmark binary) or `--node-llama-cpp DIR` (a folder where
 * `npm i node-llama-cpp` installed its prebuilt llama.cpp build); without either, only the engine runs.
 */

interface SideFigures {
  side: string;
  prefillMs: number;
  prefillTokensPerSecond: number;
  decodeMsPerToken: number;
  decodeTokensPerSecond: number;
  loadMs: number;
  peakRssBytes: number | null;
}

export const ggufBench: BenchSuite = {
  summary: 'the engine beside llama.cpp on the same GGUF: prefill and decode tokens/s, peak RSS',
  usage:
    'bench gguf --model file.gguf [--dtype keep|int4|int8|fp16|fp32] [--prompt 512] [--gen 128] [--threads 2]\n' +
    '         [--llama-bench PATH | --node-llama-cpp DIR]',
  options: {
    model: { type: 'string' },
    prompt: { type: 'string' },
    gen: { type: 'string' },
    'node-llama-cpp': { type: 'string' },
    side: { type: 'string' },
  },
  async run(values) {
    if (typeof values.model !== 'string' || !existsSync(values.model)) throw new CliError('--model <file.gguf> is required');
    const gguf = resolve(values.model);
    const promptTokens = integerOr(values.prompt, '--prompt', 512);
    const steps = integerOr(values.gen, '--gen', 128);
    const threads = integerOr(values.threads, '--threads', 2);
    const dtype = String(values.dtype ?? 'keep') as ImportDtype;
    // A child run measures one side and prints its figures as JSON on its last line.
    if (values.side === 'engine') return report(await engineSide(gguf, dtype, promptTokens, steps, threads));
    if (values.side === 'node-llama-cpp')
      return report(await nodeLlamaCppSide(String(values['node-llama-cpp']), gguf, promptTokens, steps, threads));

    const rows: SideFigures[] = [await child(['--side', 'engine', '--dtype', dtype], gguf, promptTokens, steps, threads)];
    if (typeof values['node-llama-cpp'] === 'string')
      rows.push(
        await child(['--side', 'node-llama-cpp', '--node-llama-cpp', values['node-llama-cpp']], gguf, promptTokens, steps, threads),
      );
    if (typeof values['llama-bench'] === 'string') {
      const figures = await runLlamaBench(values['llama-bench'], gguf, promptTokens, steps, threads);
      rows.push({
        side: 'llama-bench',
        prefillMs: (1000 * promptTokens) / figures.prefillTokensPerSecond,
        prefillTokensPerSecond: figures.prefillTokensPerSecond,
        decodeMsPerToken: 1000 / figures.decodeTokensPerSecond,
        decodeTokensPerSecond: figures.decodeTokensPerSecond,
        loadMs: Number.NaN,
        peakRssBytes: null,
      });
    }
    const ours = rows[0];
    console.log(`\nbench gguf: ${gguf}\n${promptTokens}-token prompt, ${steps} decode steps, ${threads} threads each\n`);
    printTable(
      ['runtime', 'load s', 'prefill tok/s', 'decode ms/token', 'decode tok/s', 'peak RSS GB', 'engine / this (decode)'],
      rows.map((r) => [
        r.side,
        Number.isNaN(r.loadMs) ? 'n/a' : r.loadMs / 1000,
        r.prefillTokensPerSecond,
        r.decodeMsPerToken,
        r.decodeTokensPerSecond,
        r.peakRssBytes === null ? 'n/a' : (r.peakRssBytes / 1e9).toFixed(2),
        `${(ours.decodeTokensPerSecond / r.decodeTokensPerSecond).toFixed(2)}x`,
      ]),
    );
    console.log(`\nwritten ${await writeBenchResult('gguf', { gguf, promptTokens, steps, threads, dtype, rows })}`);
  },
};

function report(figures: SideFigures): void {
  console.log(JSON.stringify(figures));
}

/** Runs this benchmark again in a child process for one side, and reads the JSON it prints last. */
async function child(args: string[], gguf: string, prompt: number, gen: number, threads: number): Promise<SideFigures> {
  const argv = [...process.execArgv, process.argv[1], 'bench', 'gguf', '--model', gguf, '--prompt', `${prompt}`, '--gen', `${gen}`];
  console.error(`measuring ${args[1]} ...`);
  const { stdout } = await promisify(execFile)(process.execPath, [...argv, '--threads', `${threads}`, ...args], {
    maxBuffer: 16 << 20,
    env: { ...process.env, TRANSPRUNE_HOME: process.env.TRANSPRUNE_HOME ?? resolve('.cache/bench-gguf') },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as SideFigures;
}

/** The same prompt for both sides: seeded ids from the vocabulary's ordinary part (no control tokens). */
function promptIds(vocab: number, count: number): number[] {
  const random = mulberry32(7);
  const low = Math.min(1000, Math.floor(vocab / 4));
  return Array.from({ length: count }, () => low + Math.floor(random() * (vocab - low)));
}

async function engineSide(gguf: string, dtype: ImportDtype, promptTokens: number, steps: number, threads: number): Promise<SideFigures> {
  const store = join(process.env.TRANSPRUNE_HOME!, 'models');
  const { dir } = await importCheckpoint(gguf, store, { dtype });
  resetPeakRss();
  const loadStart = performance.now();
  const model = await LoadedModel.load(dir, { ep: 'cpu', threads });
  const loadMs = performance.now() - loadStart;
  try {
    const ids = promptIds(model.config.text.vocabSize, promptTokens);
    await prefill(model, { ids: ids.slice(0, 16), imageTokenId: model.config.imageTokenIndex }); // warm-up
    const start = performance.now();
    const prefilled = await prefill(model, { ids, imageTokenId: model.config.imageTokenIndex });
    const prefillMs = performance.now() - start;
    const decoder = new Decoder(model, prefilled);
    let token = ids[ids.length - 1];
    const decodeStart = performance.now();
    for (let i = 0; i < steps; i++) token = argmax(await decoder.step(token));
    const decodeMsPerToken = (performance.now() - decodeStart) / steps;
    return figures('engine (onnxruntime)', prefillMs, promptTokens, decodeMsPerToken, loadMs);
  } finally {
    await model.dispose();
  }
}

/** llama.cpp through node-llama-cpp's prebuilt build (CPU): the same ids, greedy decoding. */
async function nodeLlamaCppSide(dir: string, gguf: string, promptTokens: number, steps: number, threads: number): Promise<SideFigures> {
  const entry = join(resolve(dir), 'node_modules/node-llama-cpp/dist/index.js');
  if (!existsSync(entry)) throw new CliError(`--node-llama-cpp: no node-llama-cpp in ${dir} (npm i node-llama-cpp there)`);
  // biome-ignore lint/suspicious/noExplicitAny: an optional package outside this project, typed by its own docs
  const nlc: any = await import(pathToFileURL(entry).href);
  resetPeakRss();
  const loadStart = performance.now();
  const llama = await nlc.getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath: gguf });
  const context = await model.createContext({ contextSize: promptTokens + steps + 16, batchSize: promptTokens, threads });
  const loadMs = performance.now() - loadStart;
  const sequence = context.getSequence();
  const header = await readGgufHeader(gguf);
  const ids = promptIds(header.tensors.get('token_embd.weight')!.shape[0], promptTokens);
  const start = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(ids);
  const prefillMs = performance.now() - start;
  let count = 0;
  const decodeStart = performance.now();
  for await (const _ of sequence.evaluate([ids[ids.length - 1]], { temperature: 0 })) if (++count >= steps) break;
  const decodeMsPerToken = (performance.now() - decodeStart) / steps;
  await context.dispose();
  await model.dispose();
  return figures('llama.cpp (node-llama-cpp)', prefillMs, promptTokens, decodeMsPerToken, loadMs);
}

function figures(side: string, prefillMs: number, promptTokens: number, decodeMsPerToken: number, loadMs: number): SideFigures {
  return {
    side,
    prefillMs,
    prefillTokensPerSecond: (1000 * promptTokens) / prefillMs,
    decodeMsPerToken,
    decodeTokensPerSecond: 1000 / decodeMsPerToken,
    loadMs,
    peakRssBytes: peakRss(),
  };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
