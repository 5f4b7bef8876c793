import type ort from 'onnxruntime-node';
import type { z } from 'zod';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  EngineCallEventName,
  EngineCallName,
  EngineCalls,
  EngineEventPayload,
  EngineResponse,
  ModelDetails,
  ModelSummary,
} from '../../shared/ipc.js';
import { CodedError } from '../../shared/result.js';
import { parameterCount } from '../model/config.js';
import { describeArchitecture, planImport } from '../pack/footprint.js';
import { isQwen, qwenParameterCount } from '../model/qwen-config.js';
import { importCheckpoint } from '../pack/import.js';
import type { PackManifest } from '../pack/manifest.js';
import { listPacks, removePack, type PackSummary } from '../pack/store.js';
import { verifyPack } from '../pack/verify.js';
import type { AskResult, Engine, EngineEvent, EngineStage } from '../runtime/engine.js';
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
    'models.plan': ({ path }) => planImport(path),
    'models.import': async ({ path, dtype }, ctx) => {
      const { dir, manifest } = await importCheckpoint(path, resources.modelStore, {
        dtype,
        signal: ctx.signal,
        onProgress: (progress) => ctx.emit('progress', progress),
        // An updated checkpoint replaces its older import, which may be the loaded model: its sessions must not outlive its files.
        onReplace: async () => (await resources.runtime()).unload(),
      });
      return { id: manifest.id, name: manifest.name, path: dir, details: await modelDetails(dir, manifest) };
    },
    'models.remove': async ({ id }) => {
      // The loaded model may be the one going; sessions must not outlive their files.
      await (await resources.runtime()).unload();
      await removePack(resources.modelStore, id);
      return {};
    },
    'models.verify': async ({ id }, ctx) => {
      const pack = await installedPack(resources.modelStore, id);
      return verifyPack(pack.path, { signal: ctx.signal, onProgress: (progress) => ctx.emit('progress', progress) });
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
        // A branch ended by a cancel is not a finished answer: the request as a whole answers `cancelled`.
        onResult: (branch, result) => result.finishReason !== 'cancelled' && ctx.emit('answer', { branch, ...answer(result) }),
      });
      return { answers: results.map(answer) };
    },
  };
}

/** The app names packs of the store by id: a folder path here would load (or import) whatever it points at. */
async function requireInstalled(resources: EngineResources, model: string | undefined): Promise<void> {
  if (model !== undefined) await installedPack(resources.modelStore, model);
}

/** The store's pack with this id; a folder of that id without a readable manifest is named as damaged, not as missing. */
async function installedPack(store: string, id: string): Promise<PackSummary> {
  const pack = (await listPacks(store)).find((p) => p.id === id);
  if (pack) return pack;
  const folders = await readdir(store).catch((): string[] => []);
  if (!id.startsWith('.') && folders.includes(id))
    throw new CodedError(
      'internal',
      `The model pack in ${join(store, id)} cannot be read (its manifest.json is missing or damaged): delete that folder and import the model again.`,
    );
  throw new CodedError('not-found', `no installed model has the id "${id}"; choose one of the models listed in Models`);
}

/** What an answer is busy with, in the words the app shows while the user waits for the first token. */
const STAGE_TEXT: Record<EngineStage, string> = {
  verifying: 'Checking the model files',
  'loading-model': 'Loading the model',
  importing: 'Importing the model',
  preprocessing: 'Reading the image',
  'encoding-image': 'Encoding the image',
  prefill: 'Reading the prompt (prefill)',
  decoding: 'Writing the answer',
};

/**
 * What a call answering questions is doing, as `progress` events: the stages (total 0: not counted),
 * prefill layer by layer, and the progress of loading, verifying or importing a model.
 */
function progressTo(ctx: CallContext<'chat.ask' | 'chat.compare'>) {
  return {
    signal: ctx.signal,
    onEvent: (event: EngineEvent) => {
      if (event.type === 'progress') ctx.emit('progress', event.progress);
      else if (event.type === 'stage') ctx.emit('progress', { done: 0, total: 0, message: STAGE_TEXT[event.stage] });
      else {
        const message = `${STAGE_TEXT.prefill}: layer ${event.layer + 1} of ${event.numLayers}`;
        ctx.emit('progress', { done: event.layer + 1, total: event.numLayers, message });
      }
    },
  };
}

function answer(result: AskResult) {
  return { text: result.answer, stats: result.stats, trace: result.trace, finishReason: result.finishReason };
}

/**
 * Long handlers call this between steps: inference blocks the thread while it runs, so a
 * cancel message is only seen between `session.run()` calls.
 */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CodedError('cancelled', 'cancelled');
}

/** The store's valid packs (src/engine/pack/store.ts), as the app lists them, with what their model cards show. */
async function listModels(store: string): Promise<ModelSummary[]> {
  const packs = await listPacks(store);
  return Promise.all(packs.map(async ({ id, name, path, manifest }) => ({ id, name, path, details: await modelDetails(path, manifest) })));
}

async function modelDetails(dir: string, manifest: PackManifest): Promise<ModelDetails> {
  const { config } = manifest;
  const { text } = config;
  return {
    architecture: isQwen(config)
      ? `Qwen2.5-VL: Qwen2.5 ViT (${config.vision.depth} blocks) + Qwen2 (${text.numLayers} layers, hidden ${text.hiddenSize})`
      : describeArchitecture(config),
    parameters: isQwen(config) ? qwenParameterCount(config) : parameterCount(config),
    dtype: manifest.dtype,
    sizeBytes: await folderSize(dir),
    visualTokens: manifest.numVisualTokens,
    layers: text.numLayers,
    source: manifest.source.path,
  };
}

async function folderSize(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const sizes = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => (await stat(join(e.parentPath, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}
