import type { z } from 'zod';
import { appCalls, parseRequest, type AppCalls, type AppCallName, type AppEventName, type AppEventPayload, type AppResponse } from '../shared/ipc.js';
import { errorFrom, ok, type Result } from '../shared/result.js';
import type { EngineHost } from './engine-host.js';

/**
 * The app API's handlers, shared by Electron main (src/main/ipc.ts) and the web host
 * (src/web/server.ts). Electron-free. Adding a call: an entry in `appCalls` and one here.
 */
export type AppHandlers = {
  [K in AppCallName]: (request: z.output<AppCalls[K]['request']>) => Promise<AppResponse<K>>;
};

export interface AppContext {
  engine: EngineHost;
}

export function createAppHandlers({ engine }: AppContext): AppHandlers {
  return {
    'engine.status': async () => engine.status,
    'engine.restart': async () => {
      await engine.restart();
      return engine.status;
    },
    'engine.selfTest': (request) => engine.call('engine.selfTest', request),
    'models.list': () => engine.call('models.list', {}),
  };
}

/** Validates the call name and payload, runs the handler, and never throws: the caller gets a Result. */
export async function dispatchAppCall(handlers: AppHandlers, name: string, payload: unknown): Promise<Result<unknown>> {
  try {
    const call = parseRequest(appCalls, name, payload);
    const handler = handlers[call.name] as (request: unknown) => Promise<unknown>;
    return ok(await handler(call.request));
  } catch (e) {
    return errorFrom(e);
  }
}

export type AppEventSink = <E extends AppEventName>(event: E, payload: AppEventPayload<E>) => void;

/** Forwards what the app pushes to the renderer (engine status changes) to a sink; returns the unsubscribe. */
export function forwardAppEvents({ engine }: AppContext, emit: AppEventSink): () => void {
  return engine.onStatus((status) => emit('engine.status', status));
}
