import { formatFlopsShare } from '../../shared/compute.js';
import type { AskResult, EngineStage } from '../../engine/runtime/engine.js';
import { CliError, type CliCommand } from '../command.js';
import { progressLine } from '../progress-line.js';
import { PRUNING_USAGE, methodsFromArgs, pruningOptions, writeTraceFiles } from '../pruning-options.js';
import {
  MODEL_USAGE,
  RUNTIME_USAGE,
  engineFromArgs,
  integerArg,
  nonNegativeArg,
  questionFromArgs,
  questionOptions,
  runtimeOptions,
} from '../run-options.js';

/** `ask`: one question about one image, the answer streamed, then timings and token counts. */
export const askCommand: CliCommand = {
  name: 'ask',
  summary: 'answer a question about an image (or a text-only one, without --image), streaming the answer, then print timings',
  usage: `ask ${MODEL_USAGE} [--image <file>] [--max-tokens n] [--temperature t --top-p p --seed s] [--stop s]... ${RUNTIME_USAGE} ${PRUNING_USAGE} "question"`,
  options: {
    ...questionOptions,
    'max-tokens': { type: 'string', default: '256' },
    temperature: { type: 'string', default: '0' },
    'top-p': { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
    stop: { type: 'string', multiple: true },
    ...runtimeOptions,
    ...pruningOptions,
  },
  async run(args) {
    const { values } = args;
    const { model, image, question, maxPixels } = questionFromArgs(args, 'ask');
    const methods = methodsFromArgs(args); // the app's default method (TransPrune High) unless one is given
    if (methods.length > 1) throw new CliError('ask takes one --method; use compare for several');

    const engine = engineFromArgs(values);
    let stage: EngineStage = 'importing';
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      const result = await asCliError(() =>
        engine.ask(
          {
            model,
            image,
            question,
            maxPixels,
            method: methods[0],
            maxTokens: integerArg(values['max-tokens'], '--max-tokens'),
            stop: values.stop as string[] | undefined,
            sampling: {
              temperature: nonNegativeArg(values.temperature, '--temperature'),
              topP: nonNegativeArg(values['top-p'], '--top-p'),
              seed: integerArg(values.seed, '--seed', 0),
            },
          },
          {
            onToken: (text) => process.stdout.write(text),
            onEvent: (e) => {
              // Progress belongs to the stage announced before it: an import, or the first load's weight check.
              if (e.type === 'stage') stage = e.stage;
              if (e.type === 'progress') {
                const { done, total, message } = e.progress;
                progressLine(`${stage} ${(100 * (done / total)).toFixed(0)}% ${message}`, done >= total);
              }
            },
            signal: controller.signal,
          },
        ),
      );
      process.stdout.write('\n');
      printStats(result);
      if (values.trace !== undefined) {
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

export function printStats({ stats, provider, finishReason, trace }: AskResult): void {
  const { flops } = trace.totals;
  const fallbacks = provider.failures.map((f) => `${f.provider} failed: ${f.reason}`).join('; ');
  const lines = [
    `provider       ${provider.active}${fallbacks ? ` (${fallbacks})` : ''}`,
    `preprocess     ${ms(stats.preprocessMs)}`,
    `vision         ${ms(stats.imageEncodeMs)}${stats.visionCached ? ' (cached)' : ''}`,
    `prefill        ${ms(stats.prefillMs)}  (${stats.prefillTokens} tokens, ${stats.visualTokensKept}/${stats.visualTokensTotal} visual kept)`,
    `compute        ${formatFlopsShare(flops.paper, flops.paperUnpruned)} by the paper's count, ${formatFlopsShare(flops.full, flops.fullUnpruned)} in full`,
    `first token    ${ms(stats.timeToFirstTokenMs)}`,
    `decode         ${stats.decodeTokensPerSec.toFixed(1)} tokens/s`,
    `tokens         ${stats.promptTokens} prompt, ${stats.generatedTokens} generated (${finishReason})`,
  ];
  console.error(lines.join('\n'));
}

const ms = (value = 0) => `${value.toFixed(1)} ms`;
