import { PROVIDER_REQUESTS, type ProviderRequest } from '../../engine/runtime/providers.js';
import { Engine, type AskResult } from '../../engine/runtime/engine.js';
import { cliStoreDir } from '../../engine/pack/store.js';
import { CliError, type CliCommand, type ParsedArgs } from '../command.js';
import { PRUNING_USAGE, methodsFromArgs, pruningOptions, writeTraceFiles } from '../pruning-options.js';

/** `ask`: one question about one image, the answer streamed, then timings and token counts. */

/** Options every command that runs a model shares: where models live and how they run. */
export const runtimeOptions = {
  store: { type: 'string' },
  ep: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
} as const;

export const RUNTIME_USAGE = '[--ep auto|cpu|cuda|webgpu|dml|coreml] [--threads n] [--store <model store dir>]';

export function engineFromArgs(values: ParsedArgs['values']): Engine {
  const ep = String(values.ep ?? 'auto') as ProviderRequest;
  if (!PROVIDER_REQUESTS.includes(ep)) throw new CliError(`--ep must be one of ${PROVIDER_REQUESTS.join(', ')}`);
  const threads = values.threads === undefined ? undefined : integer(values.threads, '--threads', 1);
  const modelStore = (values.store as string | undefined) ?? cliStoreDir();
  return new Engine({ modelStore, ep, threads });
}

export const askCommand: CliCommand = {
  name: 'ask',
  summary: 'answer a question about an image, streaming the answer, then print timings',
  usage: `ask --model <name|folder> --image <file> [--max-tokens n] [--temperature t --top-p p --seed s] [--stop s]... ${RUNTIME_USAGE} ${PRUNING_USAGE} "question"`,
  options: {
    model: { type: 'string' },
    image: { type: 'string' },
    'max-tokens': { type: 'string', default: '256' },
    temperature: { type: 'string', default: '0' },
    'top-p': { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
    stop: { type: 'string', multiple: true },
    ...runtimeOptions,
    ...pruningOptions,
  },
  async run(args) {
    const { values, positionals } = args;
    if (!values.model) throw new CliError('--model <name|folder> is required');
    if (!values.image) throw new CliError('--image <file> is required');
    const question = positionals.join(' ').trim();
    if (!question) throw new CliError('the question is missing: ask ... "What is in the image?"');
    const methods = methodsFromArgs(args);
    if (methods.length > 1) throw new CliError('ask takes one --method; use compare for several');

    const engine = engineFromArgs(values);
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      const result = await asCliError(() => engine.ask(
        {
          model: String(values.model),
          image: String(values.image),
          question,
          method: methods[0],
          maxTokens: integer(values['max-tokens'], '--max-tokens', 1),
          stop: values.stop as string[] | undefined,
          sampling: { temperature: number(values.temperature, '--temperature'), topP: number(values['top-p'], '--top-p'), seed: integer(values.seed, '--seed', 0) },
          trace: values.trace !== undefined,
        },
        {
          onToken: (text) => process.stdout.write(text),
          onEvent: (e) => { if (e.type === 'progress') process.stderr.write(`\rimporting ${(100 * e.fraction).toFixed(0)}% ${e.message}\x1b[K${e.fraction >= 1 ? '\n' : ''}`); },
          signal: controller.signal,
        },
      ));
      process.stdout.write('\n');
      printStats(result);
      if (result.trace && values.trace !== undefined) {
        for (const path of await writeTraceFiles(result.trace, String(values.trace))) console.error(`trace written to ${path}`);
      }
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
      await engine.unload();
    }
  },
};

/**
 * Bad models, images and prompts surface as plain messages, like the CLI's own errors; set
 * TPS_DEBUG=1 to see the stack instead.
 */
export async function asCliError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (process.env.TPS_DEBUG || !(err instanceof Error)) throw err;
    throw new CliError(err.message);
  }
}

export function printStats({ stats, provider, finishReason }: AskResult): void {
  const fallbacks = provider.failures.map((f) => `${f.provider} failed: ${f.reason}`).join('; ');
  const lines = [
    `provider       ${provider.active}${fallbacks ? ` (${fallbacks})` : ''}`,
    `preprocess     ${ms(stats.preprocessMs)}`,
    `vision         ${ms(stats.visionMs)}${stats.visionCached ? ' (cached)' : ''}`,
    `prefill        ${ms(stats.prefillMs)}  (${stats.prefillTokens} tokens, ${stats.visualTokensKept}/${stats.visualTokensTotal} visual kept, ${gflop(stats.tflops)} of ${gflop(stats.tflopsUnpruned)} GFLOP)`,
    `first token    ${ms(stats.timeToFirstTokenMs)}`,
    `decode         ${stats.decodeTokensPerSec.toFixed(1)} tokens/s`,
    `tokens         ${stats.promptTokens} prompt, ${stats.generatedTokens} generated (${finishReason})`,
  ];
  console.error(lines.join('\n'));
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const gflop = (tflops: number) => (tflops * 1000).toPrecision(3);

function number(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${flag} must be a non-negative number`);
  return n;
}

function integer(value: unknown, flag: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${flag} must be an integer >= ${min}`);
  return n;
}
