import { beforeAll, describe, expect, it, vi } from 'vitest';
import { APP_EVENT_CHANNEL, appCallChannel, appCallNames } from '../../src/shared/ipc.js';

/** Imports the real preload with electron faked, captures what it exposes, and drives it. */

const electron = vi.hoisted(() => {
  const exposed = new Map<string, unknown>();
  const rendererListeners = new Map<string, (event: unknown, message: unknown) => void>();
  return {
    exposed,
    rendererListeners,
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
    ipcRenderer: {
      invoke: vi.fn(async (channel: string, request: unknown) => ({ ok: true, value: { channel, request } })),
      on: (channel: string, listener: (event: unknown, message: unknown) => void) => rendererListeners.set(channel, listener),
    },
  };
});
vi.mock('electron', () => ({ contextBridge: electron.contextBridge, ipcRenderer: electron.ipcRenderer }));

type Api = Record<string, Record<string, (r: unknown) => Promise<unknown>>> & {
  on(event: string, listener: (payload: unknown) => void): () => void;
};
let api: Api;

beforeAll(async () => {
  await import('../../src/preload/index.js');
  api = electron.exposed.get('api') as Api;
});

describe('preload bridge', () => {
  it('exposes only window.api', () => {
    expect([...electron.exposed.keys()]).toEqual(['api']);
  });

  it('has one function per app call, grouped by prefix, plus on()', () => {
    const groups = [...new Set(appCallNames.map((n) => n.split('.')[0]))].sort();
    expect(Object.keys(api).sort()).toEqual([...groups, 'on'].sort());
    const functions = Object.entries(api)
      .filter(([k]) => k !== 'on')
      .flatMap(([group, fns]) => Object.keys(fns).map((fn) => `${group}.${fn}`));
    expect(functions.sort()).toEqual([...appCallNames].sort());
    for (const group of groups) for (const fn of Object.values(api[group])) expect(typeof fn).toBe('function');
  });

  it('exposes no raw IPC, node or electron objects, and cannot be modified', () => {
    // Besides on(), every function is an app call (checked above); no generic channel access at the top.
    for (const forbidden of ['ipcRenderer', 'send', 'invoke', 'sendSync', 'process', 'require', 'fs', 'electron'])
      expect(Object.keys(api)).not.toContain(forbidden);
    for (const group of Object.values(api))
      if (typeof group === 'object') for (const fn of Object.values(group)) expect(typeof fn).toBe('function');
    expect(Object.isFrozen(api)).toBe(true);
    expect(Object.isFrozen(api.engine)).toBe(true);
  });

  it('invokes each call on its own channel and hands back the Result', async () => {
    for (const name of appCallNames) {
      const [group, fn] = name.split('.');
      const result = await api[group][fn]({ probe: name });
      expect(result).toEqual({ ok: true, value: { channel: appCallChannel(name), request: { probe: name } } });
    }
    expect(electron.ipcRenderer.invoke).toHaveBeenCalledTimes(appCallNames.length);
  });

  it('delivers pushed events to subscribers until they unsubscribe', () => {
    const push = electron.rendererListeners.get(APP_EVENT_CHANNEL)!;
    const seen: unknown[] = [];
    const unsubscribe = api.on('engine.status', (payload) => seen.push(payload));
    push({}, { event: 'engine.status', payload: { state: 'busy', restarts: 0 } });
    push({}, { event: 'other.event', payload: 1 });
    push({}, 'garbage');
    unsubscribe();
    push({}, { event: 'engine.status', payload: { state: 'ready', restarts: 0 } });
    expect(seen).toEqual([{ state: 'busy', restarts: 0 }]);
  });

  it('refuses subscriptions to unknown events', () => {
    expect(() => api.on('app:secret', () => {})).toThrow('unknown event "app:secret"');
    expect(() => api.on('engine.status', 'not a function' as never)).toThrow();
  });
});
