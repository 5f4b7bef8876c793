import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { AnswerStats } from '../../shared/conversation.js';
import type { AskRequest, CompareRequest } from '../../shared/ipc-features.js';
import type { Progress } from '../../shared/progress.js';
import type { ProviderRequest } from '../../shared/providers.js';
import { positionPolicy, type MethodSpec } from '../../shared/pruning.js';
import type { Trace } from '../../shared/trace.js';
import { prepareImage, type PreparedImage } from '../image/anyres.js';
import { preprocessQwen, type QwenImageParams } from '../image/qwen.js';
import { CodedError } from '../../shared/result.js';
import { ggufSource } from '../pack/gguf-checkpoint.js';
import { importCheckpoint } from '../pack/import.js';
import { findPack, listPacks, type PackSummary } from '../pack/store.js';
import { describeDamage, needsVerification, verifyPack } from '../pack/verify.js';
import { createMethod } from '../pruning/index.js';
import { encodeChat, type EncodedPrompt } from '../text/chat.js';
import { TraceRecorder, type TraceMeta } from '../trace/recorder.js';
import {
  generate,
  generateBranches,
  type DecodeOptions,
  type FinishReason,
  type GenerateBranch,
  type GenerateOptions,
  type Generation,
} from './generate.js';
import { visionSession } from './graphs.js';
import { LruCache } from './lru.js';
import { LoadedModel } from './model.js';
import type { PrefillInput } from './prefill.js';
import type { ProviderReport } from './providers.js';
import { encodeQwenVisual } from './qwen-vision.js';
import { encodeVisual, type EncodedVisual } from './vision.js';

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

/** What loading, importing and encoding report to and are cancelled by. */
type StageCallbacks = Pick<AskCallbacks, 'onEvent' | 'signal'>;

export interface CompareCallbacks extends Omit<AskCallbacks, 'onToken'> {
  /** Answer text of the method at `branch` (the answers are decoded side by side). */
  onToken?(branch: number, text: string): void;
  /** The method at `branch` has finished its answer; the others may still be decoding. */
  onResult?(branch: number, result: AskResult): void;
}

export interface CompareResult {
  /** One result per method; with several methods each one's stats carry `sharedLayers`. */
  results: AskResult[];
  /** Leading decoder layers computed once for all methods. */
  sharedLayers: number;
  /** Wall time of the joint prefill; each result's prefillMs is that method's own (shared layers counted in full). */
  prefillMs: number;
}

export type EngineStage = 'verifying' | 'loading-model' | 'importing' | 'preprocessing' | 'encoding-image' | 'prefill' | 'decoding';
export type EngineEvent =
  | { type: 'stage'; stage: EngineStage }
  | { type: 'progress'; progress: Progress }
  /** Prefill finished decoder layer `layer` (0-based) of `numLayers`. */
  | { type: 'prefill-layer'; layer: number; numLayers: number };

export interface AskCallbacks {
  onToken?(text: string): void;
  onEvent?(event: EngineEvent): void;
  /**
   * Cancels the request: before prefill starts, ask() rejects with the signal's AbortError; from then
   * on it resolves with finishReason 'cancelled' and whatever was generated (checked between steps).
   */
  signal?: AbortSignal;
}

export interface AskResult {
  answer: string;
  finishReason: FinishReason;
  stats: AnswerStats;
  provider: ProviderReport;
  layerMs: number[];
  visualCounts: number[];
  trace: Trace;
}

export class Engine {
  #loaded: { key: string; model: LoadedModel } | undefined;
  /** Hugging Face folders already imported in this process: the importer would re-hash every weight to find out. */
  readonly #imported = new Map<string, string>();
  #queue: Promise<unknown> = Promise.resolve();
  readonly #vision: LruCache<string, EncodedVisual>;

  constructor(readonly options: EngineOptions) {
    this.#vision = new LruCache(options.visionCacheSize ?? 8);
  }

  listModels(): Promise<PackSummary[]> {
    return listPacks(this.options.modelStore);
  }

  /**
   * The loaded model for `nameOrDir` (absent: the first installed model) on `ep`, loading (and importing)
   * it when it is not the one in memory.
   */
  async ensureModel(
    nameOrDir: string | undefined,
    ep: ProviderRequest = this.options.ep ?? 'auto',
    callbacks: StageCallbacks = {},
  ): Promise<LoadedModel> {
    const dir = await this.#packDir(nameOrDir ?? (await this.#firstInstalled()), callbacks);
    const key = `${dir}|${ep}`;
    if (this.#loaded?.key === key) return this.#loaded.model;
    await this.unload();
    await verifyOnFirstLoad(dir, callbacks);
    callbacks.onEvent?.({ type: 'stage', stage: 'loading-model' });
    const model = await LoadedModel.load(dir, { ep, threads: this.options.threads });
    this.#loaded = { key, model };
    return model;
  }

  /**
   * Answers one request. Requests run one at a time, in order: they share the loaded model (a request
   * for another model or provider swaps it) and inference blocks the thread anyway.
   */
  ask(request: AskRequest, callbacks: AskCallbacks = {}): Promise<AskResult> {
    return this.#enqueue(async () => {
      const question = await this.#prepare(request, callbacks);
      const run = question.run(request.method);
      const onText = question.streamer((text) => callbacks.onToken?.(text));
      const generation = await generate(question.model, question.model.tokenizer, question.input, {
        ...question.decode,
        ...run.branch,
        onText,
      });
      return question.answer(run, generation);
    });
  }

  /**
   * Answers one request with several methods (compare): the image is encoded once, the decoder layers
   * before the first prune are computed once for all of them (prefillBranches), then the answers are
   * decoded side by side, each reported as soon as it is complete. Queued with ask().
   */
  compare(request: CompareRequest, callbacks: CompareCallbacks = {}): Promise<CompareResult> {
    if (request.methods.length < 1) return Promise.reject(new Error('compare needs at least one method'));
    return this.#enqueue(async () => {
      const question = await this.#prepare(request, callbacks);
      const runs = request.methods.map((method) => question.run(method));
      const results: AskResult[] = [];
      const branches = runs.map((run, i) => ({
        ...run.branch,
        onText: question.streamer((text) => callbacks.onToken?.(i, text)),
        onFinished: (generation: Generation, { sharedLayers }: { sharedLayers: number }) => {
          results[i] = question.answer(run, generation, runs.length > 1 ? sharedLayers : undefined);
          callbacks.onResult?.(i, results[i]);
        },
      }));
      const { model, input, decode } = question;
      const { sharedLayers, prefillMs } = await generateBranches(model, model.tokenizer, input, branches, decode);
      return { results, sharedLayers, prefillMs };
    });
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.#queue.then(work);
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  /** Everything before prefill, for one method or several: the model loaded, the image encoded, the prompt tokenized. */
  async #prepare(request: Omit<AskRequest, 'method'>, callbacks: StageCallbacks): Promise<Question> {
    const withImage = request.image !== undefined;
    const turns = request.turns ?? [{ role: 'user' as const, text: requireQuestion(request.question), image: withImage }];
    if (turns.some((t) => t.image) !== withImage)
      throw new Error(withImage ? 'an image was given, but no turn carries it' : 'a turn carries the image, but no image was given');
    const model = await this.ensureModel(request.model, request.ep, callbacks);
    if (request.image !== undefined) visionSession(model); // a text-only model refuses an image in words
    // A text-only question runs no vision tower.
    const image = request.image === undefined ? undefined : await this.#encodeImage(model, request.image, callbacks, request.maxPixels);
    callbacks.signal?.throwIfAborted();
    const prompt = encodeChat(model.tokenizer, turns, {
      template: model.chatTemplate,
      content: model.chatContent,
      imageTokenId: model.imageTokenId,
    });
    const decode: DecodeOptions & Pick<GenerateOptions, 'onLayer'> = {
      ...request.sampling,
      maxTokens: request.maxTokens,
      stopStrings: request.stop,
      eosTokenIds: model.eosTokenIds,
      signal: callbacks.signal,
      onLayer: (layer, numLayers) => callbacks.onEvent?.({ type: 'prefill-layer', layer, numLayers }),
    };
    callbacks.onEvent?.({ type: 'stage', stage: 'prefill' });
    return new Question(model, prompt, image, decode, callbacks.onEvent);
  }

  /** Preprocesses the image and runs the vision tower, unless this model has seen the same bytes recently. */
  async #encodeImage(model: LoadedModel, file: Uint8Array | string, callbacks: StageCallbacks, maxPixels?: number): Promise<EncodedImage> {
    const start = performance.now();
    callbacks.onEvent?.({ type: 'stage', stage: 'preprocessing' });
    const bytes = typeof file === 'string' ? await readImageFile(file) : file;
    const { qwen } = model;
    const prepared = qwen
      ? await preprocessQwen(bytes, withBudget(model.qwenImage, maxPixels), qwen.vision.windowSize, undefined, callbacks.signal)
      : await prepareImage(bytes, model.clip, model.viewSpec, undefined, callbacks.signal);
    const preprocessMs = performance.now() - start;

    callbacks.onEvent?.({ type: 'stage', stage: 'encoding-image' });
    // A Qwen image's tokens depend on the size the budget gave it.
    const key = `${model.dir}|${prepared.hash}${'patches' in prepared ? `|${prepared.width}x${prepared.height}` : ''}`;
    const cached = this.#vision.get(key);
    const visual =
      cached ??
      (await ('patches' in prepared ? encodeQwenVisual(model, prepared, qwen!.vision.spatialMergeSize) : encodeVisual(model, prepared)));
    if (!cached) this.#vision.set(key, visual);
    const image = { hash: prepared.hash, originalWidth: prepared.originalWidth, originalHeight: prepared.originalHeight };
    const view =
      'patches' in prepared ? { width: prepared.width, height: prepared.height } : { width: prepared.viewSize, height: prepared.viewSize };
    return { image, view, visual, preprocessMs, visionMs: performance.now() - start - preprocessMs, cached: cached !== undefined };
  }

  async unload(): Promise<void> {
    const loaded = this.#loaded;
    this.#loaded = undefined;
    this.#vision.clear();
    await loaded?.model.dispose();
  }

  async #firstInstalled(): Promise<string> {
    const [first] = await this.listModels();
    if (!first) throw new CodedError('not-found', 'no model installed: import one with `npm run cli -- import <folder>`');
    return first.path;
  }

  /** A pack folder for a name, a pack folder, or a Hugging Face folder (imported into the store first). */
  async #packDir(nameOrDir: string, callbacks: StageCallbacks): Promise<string> {
    const asPath = resolve(nameOrDir);
    const looksLikePath = isAbsolute(nameOrDir) || nameOrDir.startsWith('.') || nameOrDir.includes('/') || nameOrDir.includes('\\');
    if (looksLikePath && existsSync(join(asPath, 'manifest.json'))) return asPath;
    if (looksLikePath && (existsSync(join(asPath, 'config.json')) || (await ggufSource(asPath).catch(() => null)))) {
      const known = this.#imported.get(asPath);
      if (known && existsSync(join(known, 'manifest.json'))) return known;
      callbacks.onEvent?.({ type: 'stage', stage: 'importing' });
      const imported = await importCheckpoint(asPath, this.options.modelStore, {
        signal: callbacks.signal,
        onProgress: (progress) => callbacks.onEvent?.({ type: 'progress', progress }),
      });
      this.#imported.set(asPath, imported.dir);
      return imported.dir;
    }
    if (looksLikePath)
      throw new Error(
        `${asPath} is neither a model pack (manifest.json), a Hugging Face checkpoint folder (config.json), nor a GGUF file or folder`,
      );
    return (await findPack(this.options.modelStore, nameOrDir)).path;
  }
}

/** A pack's weights are hashed the first time it loads, and again whenever a weight file changed since. */
async function verifyOnFirstLoad(dir: string, callbacks: StageCallbacks): Promise<void> {
  if (!(await needsVerification(dir))) return;
  callbacks.onEvent?.({ type: 'stage', stage: 'verifying' });
  const result = await verifyPack(dir, {
    signal: callbacks.signal,
    onProgress: (progress) => callbacks.onEvent?.({ type: 'progress', progress }),
  });
  if (!result.ok) {
    throw new CodedError(
      'internal',
      `The model pack in ${dir} is damaged: ${result.damaged.map(describeDamage).join('; ')}. Remove the model and import it again.`,
    );
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

/** Qwen2.5-VL's image parameters under a request's visual-token budget (the checkpoint's own when none is given). */
function withBudget(params: QwenImageParams, maxPixels: number | undefined): QwenImageParams {
  if (maxPixels === undefined) return params;
  if (maxPixels < params.minPixels)
    throw new CodedError('invalid-request', `maxPixels ${maxPixels} is below the checkpoint's min_pixels ${params.minPixels}`);
  return { ...params, maxPixels };
}

/** The encoded image of a question (#encodeImage). */
interface EncodedImage {
  image: Pick<PreparedImage, 'hash' | 'originalWidth' | 'originalHeight'>;
  /** The size the vision tower saw (one view's for LLaVA-NeXT). */
  view: { width: number; height: number };
  /** The visual tokens, where each came from, and how many views the vision tower ran. */
  visual: EncodedVisual;
  preprocessMs: number;
  visionMs: number;
  cached: boolean;
}

/** One method's part in answering a question: its pruning (none: no method at all), position policy and trace. */
interface MethodRun {
  branch: GenerateBranch;
  recorder: TraceRecorder;
}

/** A question ready to prefill: its model, encoded image and prompt; answers one method or several (`run` each). */
class Question {
  #decoding = false;

  constructor(
    readonly model: LoadedModel,
    readonly prompt: EncodedPrompt,
    /** None for a text-only question. */
    readonly encoded: EncodedImage | undefined,
    readonly decode: DecodeOptions & Pick<GenerateOptions, 'onLayer'>,
    private readonly onEvent?: (event: EngineEvent) => void,
  ) {}

  get input(): PrefillInput {
    return { ids: this.prompt.ids, imageTokenId: this.model.imageTokenId, visual: this.encoded?.visual };
  }

  run(method: MethodSpec): MethodRun {
    const { model } = this;
    const recorder = new TraceRecorder(this.#traceMeta(method));
    // Without visual tokens a pruning method has nothing to do.
    const pruning =
      !this.encoded || (method.llm.kind === 'none' && !method.projector)
        ? undefined
        : createMethod(method, { numLayers: model.dims.numLayers, pruning: model.pruningOverrides }, recorder);
    return { branch: { method: pruning, positions: positionPolicy(method.llm, model.dims) }, recorder };
  }

  /** Where an answer's text goes; the first piece of any answer announces the decoding stage. */
  streamer(onText: (text: string) => void): (text: string) => void {
    return (text) => {
      if (!this.#decoding) {
        this.#decoding = true;
        this.onEvent?.({ type: 'stage', stage: 'decoding' });
      }
      onText(text);
    };
  }

  /** A method's result: its answer, stats and trace; `sharedLayers` when it was prefilled together with others. */
  answer({ recorder }: MethodRun, generation: Generation, sharedLayers?: number): AskResult {
    const { preprocessMs, visionMs } = this.#imageTimes();
    const { prefill, timings } = generation;
    prefill.layerMs.forEach((ms, layer) => recorder.layer(layer, prefill.visualCounts[layer], prefill.cacheLength[layer], ms));
    recorder.setTimes({ preprocess: preprocessMs, vision: visionMs, prefill: timings.prefillMs, decode: timings.decodeMs });
    const trace = recorder.finish({ answer: generation.text, generatedTokens: generation.tokenIds.length });
    const stats = this.#stats(generation, trace);
    return {
      answer: generation.text,
      finishReason: generation.finishReason,
      stats: sharedLayers === undefined ? stats : { ...stats, sharedLayers },
      provider: this.model.provider,
      layerMs: timings.layerMs,
      visualCounts: prefill.visualCounts,
      trace,
    };
  }

  #imageTimes(): { preprocessMs: number; visionMs: number; cached: boolean } {
    return this.encoded ?? { preprocessMs: 0, visionMs: 0, cached: false };
  }

  #traceMeta(method: MethodSpec): TraceMeta {
    const { model, prompt, encoded } = this;
    if (!encoded) {
      // A text-only prompt: no image, no visual tokens, and no vision tower in the compute.
      const textOnly = { textTokens: prompt.ids.length, visualTokens: 0, instructionTokens: prompt.ids.length, visualStart: 0 };
      const flopsModel = model.flopsModelFor({ count: 0, views: 0 });
      return { model: model.traceModel, provider: model.provider.active, image: null, prompt: textOnly, method, flopsModel };
    }
    const { image, view, visual } = encoded;
    // The (base) view's token grid: the merged 28 px cells of the image for Qwen2.5-VL.
    const grid = visual.grid ?? { rows: model.viewSpec.grid, cols: model.viewSpec.grid };
    return {
      model: model.traceModel,
      provider: model.provider.active,
      image: {
        hash: image.hash,
        width: image.originalWidth,
        height: image.originalHeight,
        modelWidth: view.width,
        modelHeight: view.height,
        grid,
        layout: visual.layout,
      },
      prompt: {
        textTokens: prompt.ids.length - 1,
        visualTokens: visual.count,
        instructionTokens: prompt.ids.length - 1 - prompt.imageIndex,
        visualStart: prompt.imageIndex,
      },
      method,
      flopsModel: model.flopsModelFor(visual),
    };
  }

  /** The numbers under the answer; its compute is the trace's (the paper's convention, as the inspector shows it). */
  #stats(generation: Generation, trace: Trace): AnswerStats {
    const { preprocessMs, visionMs, cached } = this.#imageTimes();
    const { prefill, timings } = generation;
    const { flops } = trace.totals;
    return {
      preprocessMs,
      imageEncodeMs: visionMs,
      visionCached: cached,
      prefillMs: timings.prefillMs,
      timeToFirstTokenMs: preprocessMs + visionMs + timings.firstTokenMs,
      decodeTokensPerSec: timings.decodeTokensPerSec,
      promptTokens: generation.promptTokens,
      prefillTokens: generation.prefillTokens,
      generatedTokens: generation.tokenIds.length,
      visualTokensTotal: prefill.originalVisualCount,
      visualTokensKept: prefill.keptOriginal.length,
      tflops: flops.paper / 1e12,
      tflopsUnpruned: flops.paperUnpruned / 1e12,
      executionProvider: this.model.provider.active,
    };
  }
}
