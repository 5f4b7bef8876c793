import { Decoder } from './decode.js';
import type { ModelSessions } from './graphs.js';
import {
  PrefillCancelled,
  prefill,
  prefillBranches,
  type BranchedPrefill,
  type PrefillBranch,
  type PrefillInput,
  type PrefillControl,
  type PrefillResult,
} from './prefill.js';
import { mulberry32 } from '../util/mulberry32.js';
import type { SamplingParams } from '../../shared/ipc-features.js';
import { sampleToken } from './sampling.js';
import { TextStream, type Detokenizer } from './text-stream.js';

/**
 * Answer generation: prefill (with pruning), then one decode step per token until EOS, a stop string,
 * the limit or a cancel. Several methods can answer the same prompt together (compare): they prefill as
 * branches sharing their common layers, then decode side by side, one step of each in turn, so every
 * answer streams from the start.
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
  /** This branch's answer is complete (the other branches may still be decoding); `sharedLayers` as in BranchedGeneration. */
  onFinished?(generation: Generation, joint: { sharedLayers: number }): void;
}

export interface GenerateOptions extends DecodeOptions, GenerateBranch, Pick<PrefillControl, 'onLayer'> {}

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

/** Prefills all branches together, then decodes their answers side by side (one step of each in turn). */
export async function generateBranches(
  model: ModelSessions,
  tokenizer: Detokenizer,
  input: PrefillInput,
  branches: readonly GenerateBranch[],
  options: DecodeOptions & Pick<PrefillControl, 'onLayer'> = {},
): Promise<BranchedGeneration> {
  const start = performance.now();
  let prefilled: BranchedPrefill;
  try {
    prefilled = await prefillBranches(model, input, branches, { signal: options.signal, onLayer: options.onLayer });
  } catch (err) {
    if (!(err instanceof PrefillCancelled)) throw err;
    const elapsed = performance.now() - start;
    const generations = branches.map(() => cancelledBeforeAnswer(input, elapsed));
    generations.forEach((g, i) => branches[i].onFinished?.(g, { sharedLayers: 0 }));
    return { generations, sharedLayers: 0, prefillMs: elapsed };
  }
  const prefillMs = performance.now() - start;
  const decoders = prefilled.branches.map(
    (result, i) => new AnswerDecoder(model, tokenizer, result, { ...options, onText: branches[i].onText }, input.ids.length),
  );
  const generations: Generation[] = [];
  let active = decoders.map((_, i) => i);
  while (active.length > 0) {
    const still: number[] = [];
    for (const i of active) {
      if (await decoders[i].step()) {
        still.push(i);
        continue;
      }
      generations[i] = decoders[i].finish();
      branches[i].onFinished?.(generations[i], { sharedLayers: prefilled.sharedLayers });
    }
    active = still;
  }
  return { generations, sharedLayers: prefilled.sharedLayers, prefillMs };
}

/**
 * Decodes an answer from a finished prefill, whose caches it takes over. Its prefill time
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
  const decoder = new AnswerDecoder(model, tokenizer, prefilled, options, promptTokens);
  while (await decoder.step());
  return decoder.finish();
}

/**
 * One answer decoded a token at a time: `step()` samples the next token from the current logits and,
 * unless the answer ends there, runs the model on it. Decode time sums this answer's own steps, so
 * answers decoded side by side each report the speed they would have alone.
 */
class AnswerDecoder {
  readonly #options: DecodeOptions & Pick<GenerateBranch, 'onText'>;
  readonly #maxTokens: number;
  readonly #eos: Set<number>;
  readonly #rng: () => number;
  readonly #stream: TextStream;
  readonly #decoder: Decoder;
  readonly #prefilled: PrefillResult;
  readonly #prefillMs: number;
  readonly #promptTokens: number;
  readonly #tokenIds: number[] = [];
  #logits: Float32Array;
  #finishReason: FinishReason | undefined;
  #decodeMs = 0;
  #decodeSteps = 0;

  constructor(
    model: ModelSessions,
    tokenizer: Detokenizer,
    prefilled: PrefillResult,
    options: DecodeOptions & Pick<GenerateBranch, 'onText'>,
    promptTokens: number,
  ) {
    this.#options = options;
    this.#maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
    this.#eos = new Set(options.eosTokenIds ?? []);
    this.#rng = mulberry32(options.seed ?? 0);
    this.#stream = new TextStream(tokenizer, options.stopStrings);
    this.#decoder = new Decoder(model, prefilled);
    this.#prefilled = prefilled;
    this.#prefillMs = prefilled.embedMs + prefilled.layerMs.reduce((a, b) => a + b, 0) + prefilled.headMs;
    this.#promptTokens = promptTokens;
    this.#logits = prefilled.logits;
    if (options.signal?.aborted) this.#finishReason = 'cancelled';
  }

  /** Emits the next token; false once the answer has ended (EOS, stop string, limit or cancel). */
  async step(): Promise<boolean> {
    if (this.#finishReason) return false;
    const start = performance.now();
    try {
      return await this.#advance();
    } finally {
      this.#decodeMs += performance.now() - start;
    }
  }

  async #advance(): Promise<boolean> {
    if (this.#tokenIds.length >= this.#maxTokens) return this.#end('length');
    const token = sampleToken(this.#logits, this.#options, this.#rng);
    if (this.#eos.has(token)) return this.#end('eos');
    this.#tokenIds.push(token);
    const delta = this.#stream.push(token);
    if (delta) this.#options.onText?.(delta, token);
    if (this.#stream.stopped) return this.#end('stop');
    if (this.#tokenIds.length >= this.#maxTokens) return this.#end('length');
    if (this.#options.signal?.aborted) return this.#end('cancelled');
    this.#logits = await this.#decoder.step(token);
    this.#decodeSteps++;
    return true;
  }

  #end(reason: FinishReason): false {
    this.#finishReason = reason;
    const rest = this.#stream.flush();
    if (rest) this.#options.onText?.(rest, this.#tokenIds[this.#tokenIds.length - 1]);
    return false;
  }

  finish(): Generation {
    const { caches: _caches, logits: _logits, ...prefillInfo } = this.#prefilled;
    const { layerMs, entryLength } = this.#prefilled;
    return {
      text: this.#stream.text,
      tokenIds: this.#tokenIds,
      finishReason: this.#finishReason ?? 'length',
      promptTokens: this.#promptTokens,
      prefillTokens: entryLength,
      prefill: prefillInfo,
      timings: {
        prefillMs: this.#prefillMs,
        // The first token comes from the prefill's logits.
        firstTokenMs: this.#tokenIds.length > 0 || this.#finishReason === 'eos' ? this.#prefillMs : 0,
        decodeMs: this.#decodeMs,
        decodeTokensPerSec: this.#decodeSteps > 0 && this.#decodeMs > 0 ? this.#decodeSteps / (this.#decodeMs / 1000) : 0,
        layerMs,
      },
    };
  }
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
      ropeGrids: [],
      embedMs: 0,
      headMs: 0,
    },
    timings: { prefillMs: elapsed, firstTokenMs: 0, decodeMs: 0, decodeTokensPerSec: 0, layerMs: [] },
  };
}
