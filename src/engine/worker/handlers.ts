import type ort from 'onnxruntime-node';
import type { z } from 'zod';
import type { AnswerStats } from '../../shared/conversation.js';
import type { EngineCalls, EngineEventName, EngineEventPayload, EngineResponse, ModelSummary } from '../../shared/ipc.js';
import { CodedError } from '../../shared/result.js';
import { importCheckpoint } from '../pack/import.js';
import { listPacks, removePack } from '../pack/store.js';
import type { AskRequest } from '../../shared/ipc-features.js';
import type { AskResult, AskStats, Engine, EngineEvent } from '../runtime/engine.js';
import { PROVIDER_REQUESTS, type ProviderRequest } from '../runtime/providers.js';
import { runProbe } from './providers.js';

/** What a handler gets besides its request: the abort signal of its request id and a way to stream events tagged with it. */
export interface CallContext {
  signal: AbortSignal;
  emit<E extends EngineEventName>(event: E, payload: EngineEventPayload<E>): void;
}

/** The calls a handler serves; `cancel`, `shutdown` and `ping` are the message loop's own. */
export type HandledCall = Exclude<keyof EngineCalls, 'cancel' | 'shutdown' | 'ping'>;

export type EngineHandlers = {
  [K in HandledCall]: (request: z.output<EngineCalls[K]['request']>, ctx: CallContext) => Promise<EngineResponse<K>>;
};

export interface EngineResources {
  /** Folder holding one sub-folder per installed model pack. */
  modelStore: string;
  activeProvider: string;
  /** The probe model's session on the active provider, kept open for engine.selfTest. */
  probeSession: ort.InferenceSession;
  /** The runtime (src/engine/runtime), loaded on first use so the handshake does not wait for it. */
  runtime(): Promise<Engine>;
}

/** One entry per engine call; the runtime's Engine facade answers `chat.ask` and `chat.compare`. */
export function createHandlers(resources: EngineResources): EngineHandlers {
  return {
    'models.list': () => listModels(resources.modelStore),
    'engine.selfTest': async ({ runs }, ctx) => {
      const progressEvery = Math.max(1, Math.floor(runs / 20));
      const start = performance.now();
      for (let done = 0; done < runs; ) {
        throwIfCancelled(ctx.signal);
        await runProbe(resources.probeSession);
        done++;
        if (done % progressEvery === 0 || done === runs) ctx.emit('progress', { done, total: runs });
      }
      return { provider: resources.activeProvider, runs, meanMs: (performance.now() - start) / runs };
    },
    'models.import': async ({ path }, ctx) => {
      const { dir, manifest } = await importCheckpoint(path, resources.modelStore, {
        signal: ctx.signal,
        onProgress: ({ fraction, message }) => ctx.emit('progress', { done: fraction, total: 1, message }),
      });
      return { id: manifest.id, name: manifest.name, path: dir };
    },
    'models.remove': async ({ id }) => {
      // The loaded model may be the one going; sessions must not outlive their files.
      await (await resources.runtime()).unload();
      await removePack(resources.modelStore, id);
      return {};
    },
    'chat.ask': async ({ method, ...request }, ctx) => {
      const engine = await resources.runtime();
      const result = await engine.ask(
        { ...(await engineRequest(resources, request)), method },
        {
          ...progressTo(ctx),
          onToken: (delta) => ctx.emit('text', { delta }),
        },
      );
      return answer(result);
    },
    'chat.compare': async ({ methods, ...request }, ctx) => {
      const engine = await resources.runtime();
      const { results } = await engine.compare(
        { ...(await engineRequest(resources, request)), methods },
        { ...progressTo(ctx), onToken: (branch, delta) => ctx.emit('text', { delta, branch }) },
      );
      return { answers: results.map(answer) };
    },
  };
}

/** The runtime's request for an app answer (the method or methods added by the caller). */
async function engineRequest(resources: EngineResources, request: Omit<AskRequest, 'method'>) {
  const installed = await listModels(resources.modelStore);
  const model = request.model ?? installed[0]?.id;
  if (!model) throw new CodedError('not-found', 'no model installed: import one with `npm run cli -- import <folder>`');
  // The app names packs of the store by id; a folder path here would load (or import) whatever it points at.
  if (!installed.some((m) => m.id === model)) {
    throw new CodedError('not-found', `no installed model has the id "${model}"; choose one of the models listed in Models`);
  }
  return {
    model,
    image: request.imagePath,
    messages: request.turns,
    sampling: request.sampling,
    maxTokens: request.maxTokens,
    ep: providerRequest(request.ep),
    trace: true,
  };
}

function progressTo(ctx: CallContext) {
  return {
    signal: ctx.signal,
    onEvent: (event: EngineEvent) =>
      event.type === 'progress' && ctx.emit('progress', { done: event.fraction, total: 1, message: event.message }),
  };
}

function answer(result: AskResult) {
  return { text: result.answer, stats: answerStats(result.stats), trace: result.trace };
}

function providerRequest(name: string): ProviderRequest {
  if (!(PROVIDER_REQUESTS as readonly string[]).includes(name)) {
    throw new CodedError('invalid-request', `unknown execution provider "${name}"; known: ${PROVIDER_REQUESTS.join(', ')}`);
  }
  return name as ProviderRequest;
}

/** The runtime's numbers as a chat answer shows and stores them. */
function answerStats(stats: AskStats): AnswerStats {
  return {
    timeToFirstTokenMs: stats.timeToFirstTokenMs,
    imageEncodeMs: stats.visionMs,
    prefillMs: stats.prefillMs,
    decodeTokensPerSec: stats.decodeTokensPerSec,
    generatedTokens: stats.generatedTokens,
    visualTokensKept: stats.visualTokensKept,
    visualTokensTotal: stats.visualTokensTotal,
    tflops: stats.tflops,
    tflopsUnpruned: stats.tflopsUnpruned,
    executionProvider: stats.executionProvider,
    ...(stats.sharedLayers !== undefined && { sharedLayers: stats.sharedLayers }),
  };
}

/**
 * Long handlers call this between steps: inference blocks the thread while it runs, so a
 * cancel message is only seen between `session.run()` calls.
 */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CodedError('cancelled', 'cancelled');
}

/** The store's valid packs (src/engine/pack/store.ts), as the app lists them. */
async function listModels(store: string): Promise<ModelSummary[]> {
  return (await listPacks(store)).map(({ id, name, path }) => ({ id, name, path }));
}
