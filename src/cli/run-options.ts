import { existsSync, statSync } from 'node:fs';
import { PROVIDER_REQUESTS, type ProviderRequest } from '../shared/providers.js';
import { Engine } from '../engine/runtime/engine.js';
import { modelStoreDir } from '../main/paths.js';
import { findPack, type PackSummary } from '../engine/pack/store.js';
import { DEMO_MODEL_NAME, DemoModelMissingError, demoModelDir } from '../engine/data/demo-model.js';
import { CliError, type ParsedArgs } from './command.js';

/** How a model runs: the execution provider and ONNX Runtime's thread count. */
export const providerOptions = {
  ep: { type: 'string' },
  threads: { type: 'string' },
} as const;

/** Options every command that runs a model shares: where models live and how they run. */
export const runtimeOptions = {
  store: { type: 'string' },
  ...providerOptions,
} as const;

export const RUNTIME_USAGE = '[--ep auto|cpu|cuda|webgpu|dml|coreml] [--threads n] [--store <model store dir>]';

/** --ep (`fallback` when absent) and --threads (ONNX Runtime's default when absent). */
export function providerFromArgs(
  values: ParsedArgs['values'],
  fallback: ProviderRequest = 'auto',
): { ep: ProviderRequest; threads: number | undefined } {
  const ep = String(values.ep ?? fallback) as ProviderRequest;
  if (!PROVIDER_REQUESTS.includes(ep)) throw new CliError(`--ep must be one of ${PROVIDER_REQUESTS.join(', ')}`);
  const threads = values.threads === undefined ? undefined : integerArg(values.threads, '--threads');
  return { ep, threads };
}

export function engineFromArgs(values: ParsedArgs['values']): Engine {
  const { ep, threads } = providerFromArgs(values);
  return new Engine({ modelStore: storeFromArgs(values), ep, threads });
}

/** --store, or the app's model store when absent. */
export function storeFromArgs(values: ParsedArgs['values']): string {
  return typeof values.store === 'string' ? values.store : modelStoreDir();
}

/** The one pack a command names (`<name|id>`) in that store; the error lists what the store holds. */
export async function namedPackFromArgs(args: ParsedArgs, usage: string): Promise<{ store: string; pack: PackSummary }> {
  const [model, ...extra] = args.positionals;
  if (!model || extra.length) throw new CliError(`expected one model name or id\nusage: npm run cli -- ${usage}`);
  const store = storeFromArgs(args.values);
  const pack = await findPack(store, model).catch((e: Error) => {
    throw new CliError(e.message);
  });
  return { store, pack };
}

/** The options of a command that asks one question about one image (ask, compare). */
export const questionOptions = {
  model: { type: 'string' },
  image: { type: 'string' },
  'max-pixels': { type: 'string' },
} as const;

export const MODEL_USAGE = '[--model demo|<pack name>|<HF folder>] [--max-pixels n (Qwen2.5-VL: visual-token budget, 784 px per token)]';

/** `--model`, the embedded demo model when absent: `demo` is its checkpoint folder, anything else goes to the engine as given. */
export function modelFromArgs(values: ParsedArgs['values']): string {
  const model = values.model === undefined ? DEMO_MODEL_NAME : String(values.model);
  if (model !== DEMO_MODEL_NAME) return model;
  try {
    return demoModelDir();
  } catch (err) {
    if (err instanceof DemoModelMissingError) throw new CliError(err.message);
    throw err;
  }
}

/**
 * The model (demo by default), image and question (the positionals) of `command`. The question is
 * required; the image is not (a text-only question, as in the app), but when given it must be a file.
 */
export function questionFromArgs(
  { values, positionals }: ParsedArgs,
  command: string,
): { model: string; image?: string; question: string; maxPixels?: number } {
  const question = positionals.join(' ').trim();
  if (!question) throw new CliError(`the question is missing: ${command} ... "What is in the image?"`);
  const image = values.image === undefined ? undefined : String(values.image);
  if (image !== undefined && !statSync(image, { throwIfNoEntry: false })?.isFile())
    throw new CliError(`--image ${image}: ${existsSync(image) ? 'is not a file' : 'no such file'}`);
  const maxPixels = values['max-pixels'] === undefined ? {} : { maxPixels: integerArg(values['max-pixels'], '--max-pixels', 28 * 28) };
  return { model: modelFromArgs(values), image, question, ...maxPixels };
}

/** A CLI integer option, with the flag named in the error. */
export function integerArg(value: unknown, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${flag} must be an integer >= ${min}`);
  return n;
}

/** An optional integer option: `fallback` when absent. */
export function integerOr(value: unknown, flag: string, fallback: number, min = 1): number {
  return value === undefined ? fallback : integerArg(value, flag, min);
}

export function nonNegativeArg(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${flag} must be a non-negative number`);
  return n;
}
