import type { z } from 'zod';
import type { featureCalls, featureEvents, ModelSummary, Saved } from '../../shared/ipc-features.js';
import { validateImage } from '../../engine/index.js';
import { readTrace, traceToJson, traceToTokenCsv } from '../../shared/trace-files.js';
import { CodedError } from '../../shared/result.js';
import { type AppSettings, conversationDefaults } from '../../shared/settings.js';
import { writeFileAtomic } from '../storage/atomicFile.js';
import type { Storage } from '../storage/index.js';
import type { Answerer } from './answerer.js';
import { ChatService } from './chat.js';
import { CompareService } from './compare.js';
import { conversationFile, imageDataUrls, importConversationFile } from './conversation-files.js';
import { conversationToMarkdown, fileNameFor, safeFileName } from './exports.js';
import { expandHome, ModelImports, type ModelInstaller } from './models.js';
import { loadSamples } from './samples.js';

type FeatureCalls = typeof featureCalls;
export type FeatureHandlers = {
  [K in keyof FeatureCalls]: (request: z.output<FeatureCalls[K]['request']>) => Promise<z.input<FeatureCalls[K]['response']>>;
};

/** Asks the user where to save (Electron: a save dialog); null when they cancel. */
export type ChooseSavePath = (suggestedName: string) => Promise<string | null>;

export interface FeatureDeps {
  storage: Storage;
  answerer: Answerer;
  models: ModelInstaller;
  /** Absent in the browser preview: exports then go back to the renderer, and the browser downloads them. */
  chooseSavePath?: ChooseSavePath;
  /** Hugging Face's address; tests point it at a local server. */
  hfEndpoint?: string;
  /** The sample images and questions shipped with the app (resources/samples). */
  samplesDir?: string;
}

type FeatureEvents = typeof featureEvents;
type FeatureEventName = keyof FeatureEvents;
type FeaturePayload<E extends FeatureEventName> = z.output<FeatureEvents[E]>;
type Listener = <E extends FeatureEventName>(event: E, payload: FeaturePayload<E>) => void;

export interface Features {
  handlers: FeatureHandlers;
  /** Subscribes to the events the features push (streaming answers); returns the unsubscribe. */
  onEvent(listener: Listener): () => void;
  /** Start-up: temp files of cut-short writes go; answers cut off by a crash or quit become `interrupted`, keeping their text. */
  recover(): Promise<number>;
  /** Quit: stop every answer in flight (each is saved as interrupted). */
  stopAll(): void;
}

/** The chat, compare, image, trace, export, settings and model-management calls, over main's storage and the engine. */
export function createFeatures({ storage, answerer, models, chooseSavePath, hfEndpoint, samplesDir }: FeatureDeps): Features {
  const listeners = new Set<Listener>();
  const emit = <E extends FeatureEventName>(event: E, payload: FeaturePayload<E>) => {
    for (const listener of listeners) listener(event, payload);
  };
  const chat = new ChatService(storage, answerer, (payload) => emit('chat.answer', payload));
  const compare = new CompareService(storage, answerer, (payload) => emit('compare.answer', payload));
  const imports = new ModelImports(models, (progress) => emit('models.progress', progress), storage.downloadsDir, hfEndpoint);
  const { conversations, images, settings, traces } = storage;

  async function save(suggestedName: string, data: string | Uint8Array): Promise<Saved> {
    const fileName = safeFileName(suggestedName);
    if (!chooseSavePath) {
      return { path: null, download: { fileName, mimeType: mimeTypeOf(fileName), data: Buffer.from(data).toString('base64') } };
    }
    const path = await chooseSavePath(fileName);
    if (path) await writeFileAtomic(path, data);
    return { path };
  }
  /**
   * A new model never takes over silently: while no model is chosen, chats use the first installed
   * one, and an import can sort before it, so the model in use is written down before the store changes.
   * An import that replaced the model in use (an updated checkpoint of the same source) takes its place.
   */
  async function keepingModelInUse<T extends ModelSummary>(add: () => Promise<T>): Promise<T> {
    const before = models.list().catch((): ModelSummary[] => []); // asked first, answered before the new pack lands
    const added = await add();
    const current = await settings.load();
    const inUse = current.modelId ?? (await before)[0]?.id ?? added.id;
    const modelId = (await models.list()).some((m) => m.id === inUse) ? inUse : added.id;
    if (modelId !== current.modelId) await settings.save({ ...current, modelId });
    return added;
  }
  /** Tells every window the new model list once a change to the store is done. */
  async function announced<T>(change: Promise<T>): Promise<T> {
    const result = await change;
    emit('models.changed', await models.list());
    return result;
  }
  /** The model setting names a pack of the store, never a folder: the engine loads whatever it names. */
  async function withInstalledModel(next: AppSettings): Promise<AppSettings> {
    if (next.modelId === undefined || (await models.list()).some((m) => m.id === next.modelId)) return next;
    throw new CodedError('invalid-request', `No installed model has the id "${next.modelId}"; choose one of the models listed in Models.`);
  }
  const imageWithThumbnail = async (id: string) => ({
    image: await images.info(id),
    thumbnail: `data:image/webp;base64,${Buffer.from(await images.thumbnail(id)).toString('base64')}`,
  });

  const handlers: FeatureHandlers = {
    'conversations.list': ({ query }) => (query?.trim() ? conversations.search(query) : conversations.list()),
    'conversations.create': async ({ title }) => conversations.create(title, conversationDefaults(await settings.load())),
    'conversations.get': ({ id }) => conversations.get(id),
    'conversations.rename': ({ id, title }) => conversations.rename(id, title),
    'conversations.delete': async ({ id }) => {
      chat.stop(id);
      await conversations.delete(id);
      return {};
    },
    'conversations.selectVersion': ({ id, messageId, index }) => conversations.selectVersion(id, messageId, index),
    'conversations.import': ({ text }) => importConversationFile(storage, text),
    'conversations.setSettings': async ({ id, settings: next }) => {
      // Like the global setting, a conversation's model names a pack of the store, never a folder.
      if (next.modelId !== undefined) await withInstalledModel({ ...(await settings.load()), modelId: next.modelId });
      return conversations.setSettings(id, next);
    },

    'images.add': async ({ data }) => imageWithThumbnail((await images.addBytes(Buffer.from(data, 'base64'))).id),
    'images.get': ({ id }) => imageWithThumbnail(id),

    'settings.get': () => settings.load(),
    'settings.set': async (next) => settings.save(await withInstalledModel(next)),

    'chat.send': ({ conversationId, text, images: ids }) => chat.send(conversationId, text, ids),
    'chat.regenerate': ({ conversationId, messageId }) => chat.regenerate(conversationId, messageId),
    'chat.edit': ({ conversationId, messageId, text }) => chat.edit(conversationId, messageId, text),
    'chat.stop': async ({ conversationId }) => ({ stopped: chat.stop(conversationId) }),

    'compare.run': ({ text, image, left, right, models, conversationId }) =>
      compare.run(text, image, { left, right }, conversationId, models),
    'compare.stop': async ({ runId }) => ({ stopped: compare.stop(runId) }),

    'traces.get': ({ traceId }) => traces.get(traceId),
    'traces.read': async ({ text }) => readTrace(text),

    'export.trace': async ({ traceId, format }) => {
      const trace = await traces.get(traceId);
      return save(
        `trace-${trace.method.label}-${traceId.slice(0, 8)}.${format}`,
        format === 'json' ? traceToJson(trace) : traceToTokenCsv(trace),
      );
    },
    'export.overlay': async ({ traceId, png, layer }) => {
      const trace = await traces.get(traceId);
      const at = layer === undefined ? '' : `-layer${layer}`;
      return save(`overlay-${trace.method.label}${at}-${traceId.slice(0, 8)}.png`, await pngBytes(png));
    },
    'models.plan': ({ path }) => models.plan(expandHome(path)),
    'models.import': ({ path, dtype }) => announced(keepingModelInUse(() => imports.import(expandHome(path), dtype))),
    'models.catalogue': () => imports.catalogue(),
    'models.download': (request) => announced(keepingModelInUse(() => imports.download(request))),
    'models.cancelImport': async () => ({ cancelled: imports.cancel() }),
    'samples.list': async () => (samplesDir ? loadSamples(samplesDir, images, imageWithThumbnail) : []),
    'models.verify': ({ id }) => models.verify(id, (progress) => emit('models.verifyProgress', { id, progress })),
    'models.remove': async ({ id }) => {
      await announced(models.remove(id));
      const current = await settings.load();
      if (current.modelId === id) await settings.save({ ...current, modelId: undefined });
      return {};
    },

    'export.conversation': async ({ id, format }) => {
      const conversation = await conversations.get(id);
      return format === 'json'
        ? save(fileNameFor(conversation.title, 'json'), await conversationFile(storage, id))
        : save(
            fileNameFor(conversation.title, 'md'),
            conversationToMarkdown(conversation, urlOf(await imageDataUrls(storage, conversation))),
          );
    },
  };

  return {
    handlers,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    recover: async () => {
      await storage.removeTempFiles();
      return conversations.recoverInterrupted();
    },
    stopAll() {
      chat.stopAll();
      compare.stopAll();
      imports.cancel();
    },
  };
}

/** The overlay the renderer drew, checked to be a PNG image before it is written anywhere. */
async function pngBytes(base64: string): Promise<Buffer> {
  const bytes = Buffer.from(base64, 'base64');
  const format = await validateImage(bytes).then(
    (info) => info.format,
    () => undefined,
  );
  if (format !== 'png')
    throw new CodedError('invalid-request', 'The overlay to export is not a PNG image; export it again from the inspector.');
  return bytes;
}

const urlOf = (urls: Map<string, string>) => (id: string) => urls.get(id) ?? `images/${id}`;

function mimeTypeOf(fileName: string): string {
  const types: Record<string, string> = { json: 'application/json', csv: 'text/csv', md: 'text/markdown', png: 'image/png' };
  return types[fileName.split('.').pop() ?? ''] ?? 'application/octet-stream';
}
