import type { AppCallName, AppEventName, AppEventPayload, AppRequest, AppResponse } from '../../shared/ipc.js';
import type { Result } from '../../shared/result.js';

/**
 * How the UI talks to the app, whoever serves it: Electron's preload (ElectronClient) or the web
 * host over a WebSocket (WebClient). Components get a Client from context and never know which.
 */
export interface Client {
  call<K extends AppCallName>(name: K, request: AppRequest<K>): Promise<Result<AppResponse<K>>>;
  /** Returns the unsubscribe. */
  on<E extends AppEventName>(event: E, listener: (payload: AppEventPayload<E>) => void): () => void;
}
