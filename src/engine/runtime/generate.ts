import type { PositionPolicy } from '../../shared/pruning.js';
import type { PruningMethod } from '../pruning/types.js';
import { Decoder } from './decode.js';
import type { ModelSessions } from './graphs.js';
import { PrefillCancelled, prefill, type PrefillInput, type PrefillResult } from './prefill.js';
import { createRng, sampleToken, type SamplingParams } from './sampling.js';
import { TextStream, type Detokenizer } from './text-stream.js';

/** Answer generation: prefill (with pruning), then one decode step per token until EOS, a stop string, the limit or a cancel. */

export interface GenerateOptions extends SamplingParams {
  maxTokens?: number;
  eosTokenIds?: readonly number[];
  stopStrings?: readonly string[];
  method?: PruningMethod;
  positions?: PositionPolicy;
  signal?: AbortSignal;
  /** Newly settled answer text, as it streams. */
  onText?(delta: string, tokenId: number): void;
  onLayerOutput?(layer: number, hidden: Float32Array, seqLen: number): void;
}

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

export async function generate(model: ModelSessions, tokenizer: Detokenizer, input: PrefillInput, options: GenerateOptions = {}): Promise<Generation> {
  const start = performance.now();
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const eos = new Set(options.eosTokenIds ?? []);
  const rng = createRng(options.seed ?? 0);
  const stream = new TextStream(tokenizer, options.stopStrings);
  const tokenIds: number[] = [];

  let prefilled: PrefillResult;
  try {
    prefilled = await prefill(model, input, { method: options.method, positions: options.positions, signal: options.signal, onLayerOutput: options.onLayerOutput });
  } catch (err) {
    if (err instanceof PrefillCancelled) return cancelledBeforeAnswer(input, start);
    throw err;
  }
  const prefillMs = performance.now() - start;
  const { caches: _caches, logits: firstLogits, ...prefillInfo } = prefilled;

  const decoder = new Decoder(model, prefilled);
  let finishReason: FinishReason = 'length';
  let firstTokenMs = 0;
  let decodeStart = 0;
  let decodeSteps = 0;
  try {
    let logits = firstLogits;
    while (tokenIds.length < maxTokens) {
      const token = sampleToken(logits, options, rng);
      if (tokenIds.length === 0) {
        firstTokenMs = performance.now() - start;
        decodeStart = performance.now();
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
    promptTokens: input.ids.length,
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

function cancelledBeforeAnswer(input: PrefillInput, start: number): Generation {
  const elapsed = performance.now() - start;
  return {
    text: '',
    tokenIds: [],
    finishReason: 'cancelled',
    promptTokens: input.ids.length,
    prefillTokens: 0,
    prefill: { cacheLength: [], nextPosition: [], entryLength: 0, visualCounts: [], originalVisualCount: input.visual?.count ?? 0, keptOriginal: new Int32Array(0), layerMs: [], embedMs: 0, headMs: 0 },
    timings: { prefillMs: elapsed, firstTokenMs: 0, decodeMs: 0, decodeTokensPerSec: 0, layerMs: [] },
  };
}
