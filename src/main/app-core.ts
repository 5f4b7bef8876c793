import { chmod } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { AppEventName, AppEventPayload } from '../shared/ipc.js';
import { holdsCheckpoint } from '../engine/index.js';
import { EngineHost, type EngineHostOptions } from './engine-host.js';
import type { Answerer } from './features/answerer.js';
import { createFeatures, type ChooseSavePath } from './features/feature-handlers.js';
import { LocalServer } from './features/local-server.js';
import type { ModelInstaller } from './features/models.js';
import { dispatchAppCall, engineCallHandlers, type AppHandlers } from './app-handlers.js';
import { mkdirPrivate, PRIVATE_DIR_MODE } from './storage/atomicFile.js';
import { openStorage } from './storage/index.js';

/**
 * Everything behind the app API except the transport: the engine host, the storage and the
 * feature services, wired once for both Electron main and the web host. Electron-free.
 */

export type AppEventSink = <E extends AppEventName>(event: E, payload: AppEventPayload<E>) => void;

export interface AppCoreOptions extends Pick<EngineHostOptions, 'spawn' | 'restartBackoffMs'> {
  userData: string;
  /** Where an export goes: Electron asks with a save dialog; absent in the web host, whose browser downloads it. */
  chooseSavePath?: ChooseSavePath;
  /**
   * The demo checkpoint shipped with the app (resources/demo-model): imported on a first launch with no models, and
   * again on every launch while its import is installed, so that an update's new demo replaces the old one.
   */
  bundledModel?: string;
  /** Sample images with questions for the empty chat (resources/samples). */
  samplesDir?: string;
}

export interface AppCore {
  engine: EngineHost;
  handlers: AppHandlers;
  call(name: string, payload: unknown): ReturnType<typeof dispatchAppCall>;
  /** Every pushed event (engine status, streamed answers); returns the unsubscribe. */
  onEvent(sink: AppEventSink): () => void;
  /**
   * Marks answers cut off by a previous crash as interrupted, starts the engine, and on a first
   * launch installs the bundled model (progress as `models.progress`, like any import); on later ones
   * brings its import up to date (a no-op unless an update changed its files; a user who removed it keeps it removed).
   */
  start(): Promise<void>;
  /** Stops the local server and answers in flight (saved as interrupted), and shuts the engine down. */
  stop(): Promise<void>;
}

export function createAppCore({ spawn, restartBackoffMs, userData, chooseSavePath, bundledModel, samplesDir }: AppCoreOptions): AppCore {
  const engine = new EngineHost({ spawn, restartBackoffMs });
  const answerer: Answerer = {
    answer: (request, { onText, onProgress }, signal) =>
      engine.call('chat.ask', request, {
        signal,
        onEvent: (e) => (e.event === 'text' ? onText(e.payload.delta) : onProgress?.(e.payload)),
      }),
    compare: async (request, { onText, onProgress, onAnswer }, signal) => {
      const { answers } = await engine.call('chat.compare', request, {
        signal,
        onEvent: (e) => {
          if (e.event === 'text') onText(e.payload.branch ?? 0, e.payload.delta);
          else if (e.event === 'progress') onProgress?.(e.payload);
          else {
            const { branch, ...answer } = e.payload;
            onAnswer?.(branch, answer);
          }
        },
      });
      return answers;
    },
  };
  const models: ModelInstaller = {
    plan: (path) => engine.call('models.plan', { path }),
    import: (path, dtype, onProgress, signal) =>
      engine.call('models.import', { path, dtype }, { signal, onEvent: (e) => e.event === 'progress' && onProgress(e.payload) }),
    verify: (id, onProgress) => engine.call('models.verify', { id }, { onEvent: (e) => onProgress(e.payload) }),
    remove: async (id) => void (await engine.call('models.remove', { id })),
    list: () => engine.call('models.list', {}),
  };
  // HF_ENDPOINT: huggingface_hub's variable for a mirror (or a stand-in hub in the end-to-end tests).
  const hfEndpoint = process.env.HF_ENDPOINT?.replace(/\/+$/, '') || undefined;
  const features = createFeatures({ storage: openStorage(userData), answerer, models, chooseSavePath, samplesDir, hfEndpoint });
  const localServer = new LocalServer({ engine, handlers: features.handlers });
  const handlers: AppHandlers = { ...engineCallHandlers(engine), ...features.handlers, ...localServer.handlers };

  return {
    engine,
    handlers,
    call: (name, payload) => dispatchAppCall(handlers, name, payload),
    onEvent(sink) {
      const offStatus = engine.onStatus((status) => sink('engine.status', status));
      const offFeatures = features.onEvent(sink);
      const offServer = localServer.onLog((entry) => sink('server.log', entry));
      return () => {
        offStatus();
        offFeatures();
        offServer();
      };
    },
    async start() {
      // Conversations and images are the user's own: nobody else on the machine may list or read them.
      await mkdirPrivate(userData);
      await chmod(userData, PRIVATE_DIR_MODE);
      await features.recover();
      await engine.start();
      if (!bundledModel || !holdsCheckpoint(bundledModel)) return;
      const installed = await engine.call('models.list', {});
      const bundledImport = installed.some((m) => m.details?.source === resolve(bundledModel));
      if (installed.length === 0 || bundledImport) await handlers['models.import']({ path: bundledModel });
    },
    async stop() {
      features.stopAll();
      // The engine's shutdown goes out at once (quit waits for it); the server's requests are cancelled with it.
      await Promise.all([localServer.stop(), engine.shutdown()]);
    },
  };
}
