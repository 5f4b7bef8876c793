import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { positionPolicy, type MethodSpec } from '../../shared/pruning.js';
import type { Trace } from '../../shared/trace.js';
import { prepareImage, type PreparedImage } from '../image/anyres.js';
import { importCheckpoint } from '../pack/import.js';
import { findPack, listPacks, type PackSummary } from '../pack/store.js';
import { createMethod } from '../pruning/index.js';
import { fullFlops, type FlopsModel, type PrefillShape } from '../pruning/flops.js';
import { encodeChat, type ChatTurn } from '../text/chat.js';
import { TraceRecorder } from '../trace/recorder.js';
import { generateBranches, type FinishReason, type Generation } from './generate.js';
import { LruCache } from './lru.js';
import { LoadedModel } from './model.js';
import type { ProviderReport, ProviderRequest } from './providers.js';
import type { SamplingParams } from './sampling.js';
import { encodeVisual, type EncodedImage } from './vision.js';

/**
 * The engine's one entry point for the worker process and the CLI: finds or imports a model, keeps one
 * loaded, and answers questions about images. Everything below it is plain functions over sessions.
 */

export interface EngineOptions {
  /** Folder with one sub-folder per model pack. */
  modelStore: string;
  ep?: ProviderRequest;
  threads?: number;
  /** Images whose vision output is kept (multi-turn chats and compare runs reuse it). */
  visionCacheSize?: number;
}

export interface AskRequest {
  /** A pack name in the store, a pack folder, or a Hugging Face checkpoint folder (imported first). */
  model: string;
  /** Image file bytes, or a path to the file. */
  image?: Uint8Array | string;
  /** A single question, or the whole conversation (last turn the user's; the image goes with the turn marked `image`). */
  question?: string;
  messages?: ChatTurn[];
  method?: MethodSpec;
  sampling?: SamplingParams;
  maxTokens?: number;
  stop?: string[];
  ep?: ProviderRequest;
  /** Record a pruning trace (per-layer counts, scores, kept sets). */
  trace?: boolean;
}

/** What loading, importing and encoding report to and are cancelled by. */
type StageCallbacks = Pick<AskCallbacks, 'onEvent' | 'signal'>;

export interface CompareRequest extends Omit<AskRequest, 'method'> {
  /** The methods to answer with, in the order the results come back. */
  methods: MethodSpec[];
}

export interface CompareCallbacks extends Omit<AskCallbacks, 'onToken'> {
  /** Answer text of the method at `branch` (answers stream one after the other). */
  onToken?(branch: number, text: string): void;
}

export interface CompareResult {
  /** One result per method; with several methods each one's stats carry `sharedLayers`. */
  results: AskResult[];
  /** Leading decoder layers computed once for all methods. */
  sharedLayers: number;
  /** Wall time of the joint prefill; each result's prefillMs is that method's own (shared layers counted in full). */
  prefillMs: number;
}

const NO_PRUNING: MethodSpec = { llm: { kind: 'none' } };

export type EngineStage = 'loading-model' | 'importing' | 'preprocessing' | 'encoding-image' | 'prefill' | 'decoding';
export type EngineEvent = { type: 'stage'; stage: EngineStage } | { type: 'progress'; fraction: number; message: string };

export interface AskCallbacks {
  onToken?(text: string): void;
  onEvent?(event: EngineEvent): void;
  /**
   * Cancels the request: before prefill starts, ask() rejects with the signal's AbortError; from then
   * on it resolves with finishReason 'cancelled' and whatever was generated (checked between steps).
   */
  signal?: AbortSignal;
}

export interface AskStats {
  preprocessMs: number;
  visionMs: number;
  visionCached: boolean;
  prefillMs: number;
  /** From the request to the first token: preprocessing, vision and prefill included (model loading not). */
  timeToFirstTokenMs: number;
  decodeTokensPerSec: number;
  promptTokens: number;
  prefillTokens: number;
  generatedTokens: number;
  visualTokensTotal: number;
  visualTokensKept: number;
  /** Real FLOPs (2 per multiply-accumulate) of this prefill and of the unpruned one, in tera. */
  tflops: number;
  tflopsUnpruned: number;
  executionProvider: string;
  /** Compare only: leading decoder layers whose prefill was computed once for all the methods. */
  sharedLayers?: number;
}

export interface AskResult {
  answer: string;
  finishReason: FinishReason;
  stats: AskStats;
  provider: ProviderReport;
  layerMs: number[];
  visualCounts: number[];
  trace?: Trace;
}

export class Engine {
  #loaded: { key: string; model: LoadedModel } | undefined;
  /** Hugging Face folders already imported in this process: the importer would re-hash every weight to find out. */
  readonly #imported = new Map<string, string>();
  #queue: Promise<unknown> = Promise.resolve();
  readonly #vision: LruCache<string, EncodedImage>;

  constructor(readonly options: EngineOptions) {
    this.#vision = new LruCache(options.visionCacheSize ?? 8);
  }

  listModels(): Promise<PackSummary[]> {
    return listPacks(this.options.modelStore);
  }

  /** The loaded model for `nameOrDir` on `ep`, loading (and importing) it when it is not the one in memory. */
  async ensureModel(
    nameOrDir: string,
    ep: ProviderRequest = this.options.ep ?? 'auto',
    callbacks: StageCallbacks = {},
  ): Promise<LoadedModel> {
    const dir = await this.#packDir(nameOrDir, callbacks);
    const key = `${dir}|${ep}`;
    if (this.#loaded?.key === key) return this.#loaded.model;
    await this.unload();
    callbacks.onEvent?.({ type: 'stage', stage: 'loading-model' });
    const model = await LoadedModel.load(dir, { ep, threads: this.options.threads });
    this.#loaded = { key, model };
    return model;
  }

  /**
   * Answers one request. Requests run one at a time, in order: they share the loaded model (a request
   * for another model or provider swaps it) and inference blocks the thread anyway.
   */
  async ask(request: AskRequest, callbacks: AskCallbacks = {}): Promise<AskResult> {
    const { method, ...rest } = request;
    const onToken = callbacks.onToken && ((_branch: number, text: string) => callbacks.onToken!(text));
    const { results } = await this.#enqueue(() => this.#answer({ ...rest, methods: [method ?? NO_PRUNING] }, { ...callbacks, onToken }));
    return results[0];
  }

  /**
   * Answers one request with several methods (compare): the image is encoded once, the decoder layers
   * before the first prune are computed once for all of them (prefillBranches), then each answer is
   * decoded in turn. Queued with ask().
   */
  compare(request: CompareRequest, callbacks: CompareCallbacks = {}): Promise<CompareResult> {
    if (request.methods.length < 1) return Promise.reject(new Error('compare needs at least one method'));
    return this.#enqueue(() => this.#answer(request, callbacks));
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.#queue.then(work);
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #answer(request: CompareRequest, callbacks: CompareCallbacks): Promise<CompareResult> {
    if (request.image === undefined) throw new Error('an image is required: LLaVA answers questions about one image');
    const turns = request.messages ?? [{ role: 'user' as const, text: requireQuestion(request.question), image: true }];
    const model = await this.ensureModel(request.model, request.ep, callbacks);
    const start = performance.now();
    const { image, visual, preprocessMs, visionMs, cached } = await this.#encodeImage(model, request.image, callbacks);
    callbacks.signal?.throwIfAborted();
    const prompt = encodeChat(model.tokenizer, turns, { template: model.chatTemplate, imageTokenId: model.config.imageTokenIndex });
    const flopsModel = model.flopsModelFor(visual);
    const runs = request.methods.map((method) => {
      const recorder = request.trace ? new TraceRecorder(traceMeta(model, image, prompt, visual, method, flopsModel)) : undefined;
      const pruning =
        method.llm.kind === 'none' && !method.projector
          ? undefined
          : createMethod(method, { numLayers: model.dims.numLayers, pruning: model.pruningOverrides }, recorder);
      return { method, recorder, pruning };
    });

    callbacks.onEvent?.({ type: 'stage', stage: 'prefill' });
    let decoding = false;
    const branches = runs.map(({ method, pruning }, i) => ({
      method: pruning,
      positions: positionPolicy(method.llm),
      onText: (text: string) => {
        if (!decoding) {
          decoding = true;
          callbacks.onEvent?.({ type: 'stage', stage: 'decoding' });
        }
        callbacks.onToken?.(i, text);
      },
    }));
    const input = {
      ids: prompt.ids,
      imageTokenId: model.config.imageTokenIndex,
      visual: { features: visual.features, count: visual.count },
    };
    const decode = {
      ...request.sampling,
      maxTokens: request.maxTokens,
      stopStrings: request.stop,
      eosTokenIds: model.eosTokenIds,
      signal: callbacks.signal,
    };
    const { generations, sharedLayers, prefillMs } = await generateBranches(model, model.tokenizer, input, branches, decode);

    const times = { preprocessMs, visionMs, visionCached: cached, requestStart: start };
    const results = generations.map((generation, i): AskResult => {
      const stats = answerStats(model, generation, flopsModel, prompt.ids.length - 1, times);
      const { recorder } = runs[i];
      if (recorder) recordRuntime(recorder, generation, preprocessMs, visionMs);
      return {
        answer: generation.text,
        finishReason: generation.finishReason,
        stats: runs.length > 1 ? { ...stats, sharedLayers } : stats,
        provider: model.provider,
        layerMs: generation.timings.layerMs,
        visualCounts: generation.prefill.visualCounts,
        trace: recorder?.finish({ answer: generation.text, generatedTokens: generation.tokenIds.length }),
      };
    });
    return { results, sharedLayers, prefillMs };
  }

  /** Preprocesses the image and runs the vision tower, unless this model has seen the same bytes recently. */
  async #encodeImage(model: LoadedModel, file: Uint8Array | string, callbacks: StageCallbacks) {
    const start = performance.now();
    callbacks.onEvent?.({ type: 'stage', stage: 'preprocessing' });
    const bytes = typeof file === 'string' ? await readImageFile(file) : file;
    const image = await prepareImage(bytes, model.clip, model.viewSpec);
    const preprocessMs = performance.now() - start;

    callbacks.onEvent?.({ type: 'stage', stage: 'encoding-image' });
    const key = `${model.dir}|${image.hash}`;
    const cached = this.#vision.get(key);
    const visual = cached ?? (await encodeVisual(model, image));
    if (!cached) this.#vision.set(key, visual);
    return { image, visual, preprocessMs, visionMs: performance.now() - start - preprocessMs, cached: cached !== undefined };
  }

  async unload(): Promise<void> {
    const loaded = this.#loaded;
    this.#loaded = undefined;
    this.#vision.clear();
    await loaded?.model.dispose();
  }

  /** A pack folder for a name, a pack folder, or a Hugging Face folder (imported into the store first). */
  async #packDir(nameOrDir: string, callbacks: StageCallbacks): Promise<string> {
    const asPath = resolve(nameOrDir);
    const looksLikePath = isAbsolute(nameOrDir) || nameOrDir.startsWith('.') || nameOrDir.includes('/') || nameOrDir.includes('\\');
    if (looksLikePath && existsSync(join(asPath, 'manifest.json'))) return asPath;
    if (looksLikePath && existsSync(join(asPath, 'config.json'))) {
      const known = this.#imported.get(asPath);
      if (known && existsSync(join(known, 'manifest.json'))) return known;
      callbacks.onEvent?.({ type: 'stage', stage: 'importing' });
      const imported = await importCheckpoint(asPath, this.options.modelStore, {
        signal: callbacks.signal,
        onProgress: ({ fraction, message }) => callbacks.onEvent?.({ type: 'progress', fraction, message }),
      });
      this.#imported.set(asPath, imported.dir);
      return imported.dir;
    }
    if (looksLikePath)
      throw new Error(`${asPath} is neither a model pack (manifest.json) nor a Hugging Face checkpoint folder (config.json)`);
    return (await findPack(this.options.modelStore, nameOrDir)).path;
  }
}

function requireQuestion(question: string | undefined): string {
  if (!question?.trim()) throw new Error('a question is required');
  return question;
}

async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`cannot read the image ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function traceMeta(
  model: LoadedModel,
  image: PreparedImage,
  prompt: ReturnType<typeof encodeChat>,
  visual: EncodedImage,
  method: MethodSpec,
  flopsModel: FlopsModel,
) {
  const { grid } = model.viewSpec;
  return {
    model: model.traceModel,
    provider: model.provider.active,
    image: {
      hash: image.hash,
      width: image.originalWidth,
      height: image.originalHeight,
      modelWidth: image.viewSize,
      modelHeight: image.viewSize,
      grid: { rows: grid, cols: grid },
      layout: visual.layout,
    },
    prompt: {
      textTokens: prompt.ids.length - 1,
      visualTokens: visual.count,
      instructionTokens: prompt.ids.length - 1 - prompt.imageIndex,
      visualStart: prompt.imageIndex,
    },
    method,
    flopsModel,
  };
}

function recordRuntime(recorder: TraceRecorder, generation: Generation, preprocessMs: number, visionMs: number): void {
  const { prefill, timings } = generation;
  prefill.layerMs.forEach((ms, layer) => recorder.layer(layer, prefill.visualCounts[layer], prefill.cacheLength[layer], ms));
  recorder.setTimes({ preprocess: preprocessMs, vision: visionMs, prefill: timings.prefillMs, decode: timings.decodeMs });
}

function answerStats(
  model: LoadedModel,
  generation: Generation,
  flopsModel: FlopsModel,
  textTokens: number,
  times: { preprocessMs: number; visionMs: number; visionCached: boolean; requestStart: number },
): AskStats {
  const { prefill, timings } = generation;
  const shape = (visualPerLayer: number[]): PrefillShape => ({
    visualPerLayer,
    textTokens,
    visionTokens: prefill.originalVisualCount,
    ttvLayers: [],
    probes: [],
    diversity: false,
  });
  const prefillStart = times.requestStart + times.preprocessMs + times.visionMs;
  return {
    preprocessMs: times.preprocessMs,
    visionMs: times.visionMs,
    visionCached: times.visionCached,
    prefillMs: timings.prefillMs,
    timeToFirstTokenMs: prefillStart - times.requestStart + timings.firstTokenMs,
    decodeTokensPerSec: timings.decodeTokensPerSec,
    promptTokens: generation.promptTokens,
    prefillTokens: generation.prefillTokens,
    generatedTokens: generation.tokenIds.length,
    visualTokensTotal: prefill.originalVisualCount,
    visualTokensKept: prefill.keptOriginal.length,
    // A prefill cancelled before its first layer ran no layers at all.
    tflops: prefill.visualCounts.length ? fullFlops(shape(prefill.visualCounts), flopsModel).total / 1e12 : 0,
    tflopsUnpruned: fullFlops(shape(Array(flopsModel.decoder.numLayers).fill(prefill.originalVisualCount)), flopsModel).total / 1e12,
    executionProvider: model.provider.active,
  };
}
