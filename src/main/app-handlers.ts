import type { z } from 'zod';
import { appCalls, parseRequest, type AppCalls, type AppCallName } from '../shared/ipc.js';
import { errorFrom, ok, type Result } from '../shared/result.js';
import type { EngineHost } from './engine-host.js';

/**
 * The app API's handler table and its one dispatcher, used by Electron main (src/main/ipc.ts)
 * and the web host (src/web/server.ts). Electron-free. The engine calls are here; the feature
 * calls (chat, images, compare, traces, exports, settings) come from src/main/features.
 */
export type AppHandlers = {
  [K in AppCallName]: (request: z.output<AppCalls[K]['request']>) => Promise<z.input<AppCalls[K]['response']>>;
};

export type EngineCallHandlers = Pick<AppHandlers, 'engine.status' | 'engine.restart' | 'engine.selfTest' | 'models.list'>;

export function engineCallHandlers(engine: EngineHost): EngineCallHandlers {
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
