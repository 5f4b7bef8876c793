import { Decoder } from './decode.js';
import type { ModelSessions } from './graphs.js';
import {
  PrefillCancelled,
  prefill,
  prefillBranches,
  type BranchedPrefill,
  type PrefillBranch,
  type PrefillInput,
  type PrefillResult,
} from './prefill.js';
import { mulberry32 } from '../util/mulberry32.js';
import type { SamplingParams } from '../../shared/ipc-features.js';
import { sampleToken } from './sampling.js';
import { TextStream, type Detokenizer } from './text-stream.js';

/**
 * Answer generation: prefill (with pruning), then one decode step per token until EOS, a stop string,
 * the limit or a cancel. Several methods can answer the same prompt together (compare): they prefill as
 * branches sharing their common layers, then each decodes from its own prefill in turn.
 */

/** What every branch of one request decodes with. */
export interface DecodeOptions extends SamplingParams {
  maxTokens?: number;
  eosTokenIds?: readonly number[];
  stopStrings?: readonly string[];
  signal?: AbortSignal;
}

/** One method's prefill and where its answer streams. */
export interface GenerateBranch extends PrefillBranch {
  /** Newly settled answer text, as it streams. */
  onText?(delta: string, tokenId: number): void;
}

export interface GenerateOptions extends DecodeOptions, GenerateBranch {}

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerationTimings {
  prefillMs: number;
  /** From the start of prefill to the first sampled token. */
  firstTokenMs: number;
  decodeMs: number;
  /** Decode steps per second after the first token (which prefill produced). */
  decodeTokensPerSec: number;
  layerMs: number[];
}

export interface Generation {
  text: string;
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
  /** Sequence length entering the first layer (prompt with the visual tokens spliced in). */
  prefillTokens: number;
  prefill: Omit<PrefillResult, 'caches' | 'logits'>;
  timings: GenerationTimings;
}

export const DEFAULT_MAX_TOKENS = 256;

export interface BranchedGeneration {
  /** One answer per branch, in the order given. */
  generations: Generation[];
  /** Leading decoder layers the branches' prefills computed once (prefillBranches). */
  sharedLayers: number;
  /** Wall time of the joint prefill (each generation's own prefillMs counts the shared layers as if it ran them alone). */
  prefillMs: number;
}

/** One method's answer: its prefill, then the decode steps. */
export async function generate(
  model: ModelSessions,
  tokenizer: Detokenizer,
  input: PrefillInput,
  options: GenerateOptions = {},
): Promise<Generation> {
  const start = performance.now();
  let prefilled: PrefillResult;
  try {
    prefilled = await prefill(model, input, options);
  } catch (err) {
    if (!(err instanceof PrefillCancelled)) throw err;
    return cancelledBeforeAnswer(input, performance.now() - start);
  }
  return decodeFrom(model, tokenizer, prefilled, options, input.ids.length);
}

/** Prefills all branches together, then decodes each branch's answer in turn. */
export async function generateBranches(
  model: ModelSessions,
  tokenizer: Detokenizer,
  input: PrefillInput,
  branches: readonly GenerateBranch[],
  options: DecodeOptions = {},
): Promise<BranchedGeneration> {
  const start = performance.now();
  let prefilled: BranchedPrefill;
  try {
    prefilled = await prefillBranches(model, input, branches, { signal: options.signal });
  } catch (err) {
    if (!(err instanceof PrefillCancelled)) throw err;
    const elapsed = performance.now() - start;
    return { generations: branches.map(() => cancelledBeforeAnswer(input, elapsed)), sharedLayers: 0, prefillMs: elapsed };
  }
  const prefillMs = performance.now() - start;
  const generations: Generation[] = [];
  for (const [i, result] of prefilled.branches.entries()) {
    generations.push(await decodeFrom(model, tokenizer, result, { ...options, onText: branches[i].onText }, input.ids.length));
  }
  return { generations, sharedLayers: prefilled.sharedLayers, prefillMs };
}

/**
 * Decodes an answer from a finished prefill, whose caches it takes over and disposes. Its prefill time
 * is the prefill's own account (embedding, its layers, the head), so a branch of a shared prefill
 * reports what it would have taken alone.
 */
export async function decodeFrom(
  model: ModelSessions,
  tokenizer: Detokenizer,
  prefilled: PrefillResult,
  options: DecodeOptions & Pick<GenerateBranch, 'onText'>,
  promptTokens: number,
): Promise<Generation> {
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const eos = new Set(options.eosTokenIds ?? []);
  const rng = mulberry32(options.seed ?? 0);
  const stream = new TextStream(tokenizer, options.stopStrings);
  const tokenIds: number[] = [];
  const prefillMs = prefilled.embedMs + prefilled.layerMs.reduce((a, b) => a + b, 0) + prefilled.headMs;
  const { caches: _caches, logits: firstLogits, ...prefillInfo } = prefilled;

  const decoder = new Decoder(model, prefilled);
  // A compare cancelled while an earlier branch decoded: this one gives no answer at all.
  let finishReason: FinishReason = options.signal?.aborted ? 'cancelled' : 'length';
  let firstTokenMs = 0;
  let decodeStart = 0;
  let decodeSteps = 0;
  try {
    let logits = firstLogits;
    while (finishReason !== 'cancelled' && tokenIds.length < maxTokens) {
      const token = sampleToken(logits, options, rng);
      if (tokenIds.length === 0) {
        decodeStart = performance.now();
        firstTokenMs = prefillMs;
      }
      if (eos.has(token)) {
        finishReason = 'eos';
        break;
      }
      tokenIds.push(token);
      const delta = stream.push(token);
      if (delta) options.onText?.(delta, token);
      if (stream.stopped) {
        finishReason = 'stop';
        break;
      }
      if (tokenIds.length >= maxTokens) break;
      if (options.signal?.aborted) {
        finishReason = 'cancelled';
        break;
      }
      logits = await decoder.step(token);
      decodeSteps++;
    }
  } finally {
    decoder.dispose();
  }
  const rest = stream.flush();
  if (rest) options.onText?.(rest, tokenIds[tokenIds.length - 1]);

  const decodeMs = decodeStart ? performance.now() - decodeStart : 0;
  return {
    text: stream.text,
    tokenIds,
    finishReason,
    promptTokens,
    prefillTokens: prefilled.entryLength,
    prefill: prefillInfo,
    timings: {
      prefillMs,
      firstTokenMs,
      decodeMs,
      decodeTokensPerSec: decodeSteps > 0 && decodeMs > 0 ? decodeSteps / (decodeMs / 1000) : 0,
      layerMs: prefilled.layerMs,
    },
  };
}

function cancelledBeforeAnswer(input: PrefillInput, elapsed: number): Generation {
  return {
    text: '',
    tokenIds: [],
    finishReason: 'cancelled',
    promptTokens: input.ids.length,
    prefillTokens: 0,
    prefill: {
      cacheLength: [],
      nextPosition: [],
      entryLength: 0,
      visualCounts: [],
      originalVisualCount: input.visual?.count ?? 0,
      keptOriginal: new Int32Array(0),
      layerMs: [],
      embedMs: 0,
      headMs: 0,
    },
    timings: { prefillMs: elapsed, firstTokenMs: 0, decodeMs: 0, decodeTokensPerSec: 0, layerMs: [] },
  };
}
