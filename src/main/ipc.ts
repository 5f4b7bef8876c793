import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron';
import { APP_EVENT_CHANNEL, appCallChannel, appCallNames, type AppEventName, type AppEventPayload } from '../shared/ipc.js';
import { err, type Result } from '../shared/result.js';
import { dispatchAppCall, type AppHandlers } from './app-handlers.js';
import { isTrustedSender } from './security.js';

/**
 * Registers one `ipcMain.handle` per app call. Each checks the sender frame is our own top-level
 * page, then validates the payload against the contract (in dispatchAppCall). Unknown channels
 * have no handler, so Electron rejects them. Returns a function that removes the handlers.
 */
export function registerAppIpc(ipcMain: IpcMain, handlers: AppHandlers, trustedOrigin: string): () => void {
  for (const name of appCallNames) {
    ipcMain.handle(appCallChannel(name), (event: IpcMainInvokeEvent, payload: unknown): Promise<Result<unknown>> => {
      if (!isTrustedSender(event.senderFrame, trustedOrigin)) {
        return Promise.resolve(err('forbidden', `${name}: refused a call from ${event.senderFrame?.url ?? 'a destroyed frame'}`));
      }
      return dispatchAppCall(handlers, name, payload);
    });
  }
  return () => appCallNames.forEach((name) => ipcMain.removeHandler(appCallChannel(name)));
}

export function sendAppEvent<E extends AppEventName>(contents: WebContents, event: E, payload: AppEventPayload<E>): void {
  if (!contents.isDestroyed()) contents.send(APP_EVENT_CHANNEL, { event, payload });
}
