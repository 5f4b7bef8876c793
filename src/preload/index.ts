import { contextBridge, ipcRenderer } from 'electron';
import { APP_EVENT_CHANNEL, AppEventMessage, appCallChannel, appCallNames, appEventNames, type WindowApi } from '../shared/ipc.js';

/**
 * The whole bridge: `window.api` has one function per app call (grouped by name prefix, e.g.
 * `api.engine.status({})`) resolving to a Result, and `on(event, listener)` returning an
 * unsubscribe. No ipcRenderer, channels, process or file system reach the page.
 * Built as one sandbox-compatible CommonJS file (out/preload/index.cjs).
 */

type Listener = (payload: unknown) => void;

function buildWindowApi(): WindowApi {
  const groups: Record<string, Record<string, (request: unknown) => Promise<unknown>>> = {};
  for (const name of appCallNames) {
    const [group, fn] = name.split('.');
    groups[group] ??= {};
    groups[group][fn] = (request: unknown) => ipcRenderer.invoke(appCallChannel(name), request);
  }

  const listeners = new Map<string, Set<Listener>>();
  ipcRenderer.on(APP_EVENT_CHANNEL, (_event, raw: unknown) => {
    const message = AppEventMessage.safeParse(raw);
    if (message.success) listeners.get(message.data.event)?.forEach((listener) => listener(message.data.payload));
  });
  const on = (event: string, listener: Listener) => {
    if (!(appEventNames as string[]).includes(event)) throw new Error(`unknown event "${event}"`);
    if (typeof listener !== 'function') throw new Error('listener must be a function');
    const set = listeners.get(event) ?? new Set<Listener>();
    listeners.set(event, set);
    set.add(listener);
    return () => void set.delete(listener);
  };

  return Object.freeze({
    ...Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, Object.freeze(v)])),
    on,
  }) as unknown as WindowApi;
}

contextBridge.exposeInMainWorld('api', buildWindowApi());
