import type { AppCallName, AppEventName, AppEventPayload, AppRequest, AppResponse, WindowApi } from '../../shared/ipc.js';
import type { Result } from '../../shared/result.js';
import type { Client } from './client.js';

declare global {
  interface Window {
    /** Installed by src/preload in the Electron app; absent in a plain browser. */
    api?: WindowApi;
  }
}

/** The Client over `window.api`: `call('engine.status', …)` is `api.engine.status(…)`. */
export class ElectronClient implements Client {
  constructor(private readonly api: WindowApi) {}

  call<K extends AppCallName>(name: K, request: AppRequest<K>): Promise<Result<AppResponse<K>>> {
    const [group, fn] = name.split('.');
    const groups = this.api as unknown as Record<string, Record<string, (request: unknown) => Promise<Result<AppResponse<K>>>>>;
    return groups[group][fn](request);
  }

  on<E extends AppEventName>(event: E, listener: (payload: AppEventPayload<E>) => void): () => void {
    return this.api.on(event, listener);
  }
}
