import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type ort from 'onnxruntime-node';
import { z } from 'zod';
import type { EngineCalls, EngineEventName, EngineEventPayload, EngineResponse, ModelSummary } from '../../shared/ipc.js';
import { CodedError } from '../../shared/result.js';
import { runProbe } from './providers.js';

/** What a handler gets besides its request: the abort signal of its request id and a way to stream events tagged with it. */
export interface CallContext {
  signal: AbortSignal;
  emit<E extends EngineEventName>(event: E, payload: EngineEventPayload<E>): void;
}

/** The calls a handler serves; `cancel` and `shutdown` are the message loop's own. */
export type HandledCall = Exclude<keyof EngineCalls, 'cancel' | 'shutdown'>;

export type EngineHandlers = {
  [K in HandledCall]: (request: z.output<EngineCalls[K]['request']>, ctx: CallContext) => Promise<EngineResponse<K>>;
};

export interface EngineResources {
  /** Folder holding one sub-folder per installed model pack. */
  modelStore: string;
  activeProvider: string;
  /** The probe model's session on the active provider, kept open for engine.selfTest. */
  probeSession: ort.InferenceSession;
}

/** Later engine APIs (runtime's Engine facade: generate; pack: import) get one entry each here. */
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
  };
}

/**
 * Long handlers call this between steps: inference blocks the thread while it runs, so a
 * cancel message is only seen between `session.run()` calls.
 */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CodedError('cancelled', 'cancelled');
}

const ManifestName = z.object({ name: z.string() }).partial();

/** Every folder in the store with a manifest.json is a model pack. */
async function listModels(store: string): Promise<ModelSummary[]> {
  const entries = await readdir(store, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  const models: ModelSummary[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(store, entry.name);
    const manifest = await readFile(join(path, 'manifest.json'), 'utf8').catch(() => null);
    if (manifest === null) continue;
    const parsed = ManifestName.safeParse(JSON.parse(manifest));
    models.push({ id: entry.name, name: (parsed.success && parsed.data.name) || entry.name, path });
  }
  return models;
}
