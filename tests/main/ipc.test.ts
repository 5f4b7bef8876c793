import { describe, expect, it, vi } from 'vitest';
import { APP_EVENT_CHANNEL, appCallChannel, appCallNames } from '../../src/shared/ipc.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAppCore } from '../../src/main/app-core.js';
import { isTrustedSender, RENDERER_CSP } from '../../src/main/security.js';

/** Every app call through main's IPC wrapper: sender checks, payload checks, Results. */

vi.mock('electron', () => ({}));
const { registerAppIpc, sendAppEvent } = await import('../../src/main/ipc.js');

type Invoke = (event: unknown, payload: unknown) => Promise<unknown>;

function setup() {
  const handlers = new Map<string, Invoke>();
  const ipcMain = {
    handle: (channel: string, handler: Invoke) => handlers.set(channel, handler),
    removeHandler: (channel: string) => handlers.delete(channel),
  };
  // The real app core with an engine that was never started: real code, in its "stopped" state.
  const core = createAppCore({
    spawn: () => {
      throw new Error('not started in this test');
    },
    userData: mkdtempSync(join(tmpdir(), 'tp-ipc-')),
    chooseSavePath: async () => null,
  });
  const dispose = registerAppIpc(ipcMain as never, core.handlers, 'app://renderer');
  const invoke = (name: string, payload: unknown, frame: unknown = { url: 'app://renderer/index.html', parent: null }) =>
    handlers.get(appCallChannel(name as never))!({ senderFrame: frame }, payload);
  return { handlers, dispose, invoke };
}

describe('app IPC in main', () => {
  it('registers exactly one channel per call, and removes them all', () => {
    const { handlers, dispose } = setup();
    expect([...handlers.keys()].sort()).toEqual(appCallNames.map(appCallChannel).sort());
    dispose();
    expect(handlers.size).toBe(0);
  });

  it('answers our own top-level page', async () => {
    const { invoke } = setup();
    expect(await invoke('engine.status', {})).toEqual({ ok: true, value: { state: 'stopped', restarts: 0 } });
    expect(await invoke('models.list', {})).toEqual({ ok: false, error: { code: 'engine-unavailable', message: 'the engine is stopped' } });
  });

  it('refuses other origins, sub-frames and destroyed frames', async () => {
    const { invoke } = setup();
    const refused = [
      { url: 'https://evil.example/', parent: null },
      { url: 'file:///home/me/page.html', parent: null },
      { url: 'app://renderer/index.html', parent: { url: 'app://renderer/index.html' } },
      null,
    ];
    for (const frame of refused) {
      expect(await invoke('engine.status', {}, frame)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    }
  });

  it('validates every payload against the contract', async () => {
    const { invoke } = setup();
    for (const bad of [undefined, null, 'x', { extra: true }]) {
      expect(await invoke('engine.status', bad)).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    }
    expect(await invoke('engine.selfTest', { runs: -4 })).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
  });

  it('pushes events on the one event channel, skipping destroyed pages', () => {
    const send = vi.fn();
    sendAppEvent({ isDestroyed: () => false, send } as never, 'engine.status', { state: 'ready', restarts: 0 });
    sendAppEvent({ isDestroyed: () => true, send } as never, 'engine.status', { state: 'ready', restarts: 0 });
    expect(send.mock.calls).toEqual([[APP_EVENT_CHANNEL, { event: 'engine.status', payload: { state: 'ready', restarts: 0 } }]]);
  });
});

describe('sender check and CSP', () => {
  it('matches the exact origin only', () => {
    expect(isTrustedSender({ url: 'http://localhost:5173/', parent: null }, 'http://localhost:5173')).toBe(true);
    expect(isTrustedSender({ url: 'http://localhost:5174/', parent: null }, 'http://localhost:5173')).toBe(false);
    expect(isTrustedSender({ url: 'http://localhost.evil.example:5173/', parent: null }, 'http://localhost:5173')).toBe(false);
    expect(isTrustedSender({ url: 'not a url', parent: null }, 'app://renderer')).toBe(false);
  });

  it('allows no remote or inline script and no network', () => {
    const directives = Object.fromEntries(RENDERER_CSP.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
    expect(directives['script-src']).toEqual(["'self'"]);
    expect(directives['connect-src']).toEqual(["'self'"]);
    expect(directives['default-src']).toEqual(["'self'"]);
    expect(directives['object-src']).toEqual(["'none'"]);
  });
});
