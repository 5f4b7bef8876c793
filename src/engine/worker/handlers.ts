import type ort from 'onnxruntime-node';
import type { z } from 'zod';
import type {
  EngineCallEventName,
  EngineCallName,
  EngineCalls,
  EngineEventPayload,
  EngineResponse,
  ModelSummary,
} from '../../shared/ipc.js';
import { CodedError } from '../../shared/result.js';
import { importCheckpoint } from '../pack/import.js';
import { listPacks, removePack } from '../pack/store.js';
import type { AskResult, Engine, EngineEvent } from '../runtime/engine.js';
import { runProbe } from './providers.js';

/** What a handler gets besides its request: the abort signal of its request id and a way to stream its call's events, tagged with the id. */
export interface CallContext<K extends EngineCallName = EngineCallName> {
  signal: AbortSignal;
  emit<E extends EngineCallEventName<K>>(event: E, payload: EngineEventPayload<E>): void;
}

/** The calls a handler serves; `cancel`, `shutdown` and `ping` are the message loop's own. */
export type HandledCall = Exclude<keyof EngineCalls, 'cancel' | 'shutdown' | 'ping'>;

export type EngineHandlers = {
  [K in HandledCall]: (request: z.output<EngineCalls[K]['request']>, ctx: CallContext<K>) => Promise<EngineResponse<K>>;
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
        onProgress: (progress) => ctx.emit('progress', progress),
      });
      return { id: manifest.id, name: manifest.name, path: dir };
    },
    'models.remove': async ({ id }) => {
      // The loaded model may be the one going; sessions must not outlive their files.
      await (await resources.runtime()).unload();
      await removePack(resources.modelStore, id);
      return {};
    },
    'chat.ask': async (request, ctx) => {
      await requireInstalled(resources, request.model);
      const engine = await resources.runtime();
      const result = await engine.ask(request, { ...progressTo(ctx), onToken: (delta) => ctx.emit('text', { delta }) });
      return answer(result);
    },
    'chat.compare': async (request, ctx) => {
      await requireInstalled(resources, request.model);
      const engine = await resources.runtime();
      const { results } = await engine.compare(request, {
        ...progressTo(ctx),
        onToken: (branch, delta) => ctx.emit('text', { delta, branch }),
      });
      return { answers: results.map(answer) };
    },
  };
}

/** The app names packs of the store by id: a folder path here would load (or import) whatever it points at. */
async function requireInstalled(resources: EngineResources, model: string | undefined): Promise<void> {
  if (model === undefined || (await listModels(resources.modelStore)).some((m) => m.id === model)) return;
  throw new CodedError('not-found', `no installed model has the id "${model}"; choose one of the models listed in Models`);
}

/** Model loading and importing report progress on calls that answer questions. */
function progressTo(ctx: CallContext<'chat.ask' | 'chat.compare'>) {
  return {
    signal: ctx.signal,
    onEvent: (event: EngineEvent) => event.type === 'progress' && ctx.emit('progress', event.progress),
  };
}

function answer(result: AskResult) {
  return { text: result.answer, stats: result.stats, trace: result.trace };
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
