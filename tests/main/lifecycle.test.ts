import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { APP_EVENT_CHANNEL, appCallChannel, appCallNames, type EngineInfo } from '../../src/shared/ipc.js';

/**
 * src/main/index.ts, the Electron glue, run against recording fakes of the electron module:
 * single instance, app:// with CSP, validated IPC, the utilityProcess engine with its handshake,
 * crash reasons, and quitting only after the engine has shut down.
 */

const fake = vi.hoisted(() => {
  const { EventEmitter } = require('node:events') as typeof import('node:events');
  class FakeChild extends EventEmitter {
    pid = 4242;
    posted: unknown[] = [];
    postMessage(message: unknown) {
      this.posted.push(message);
    }
    kill = () => this.emit('exit', 137);
  }
  class FakeWindow {
    static all: FakeWindow[] = [];
    sent: unknown[][] = [];
    webContents = {
      on() {},
      setWindowOpenHandler() {},
      isDestroyed: () => false,
      send: (...args: unknown[]) => this.sent.push(args),
    };
    constructor(public options: unknown) {
      FakeWindow.all.push(this);
    }
    static getAllWindows() {
      return FakeWindow.all;
    }
    loaded: string[] = [];
    once() {}
    loadURL = async (url: string) => {
      this.loaded.push(url);
    };
  }
  const state = {
    lock: true,
    userData: '',
    app: new EventEmitter() as InstanceType<typeof EventEmitter> & Record<string, unknown>,
    children: [] as FakeChild[],
    forks: [] as unknown[][],
    ipc: new Map<string, (...a: unknown[]) => unknown>(),
    protocolHandler: undefined as undefined | ((request: Request) => Promise<Response>),
    schemes: [] as unknown[],
    FakeWindow,
  };
  Object.assign(state.app, {
    requestSingleInstanceLock: () => state.lock,
    quit: vi.fn(),
    whenReady: vi.fn(async () => {}),
    getPath: () => state.userData,
    getAppPath: () => state.userData,
    isPackaged: false,
  });
  const electron = {
    app: state.app,
    BrowserWindow: FakeWindow,
    ipcMain: { handle: (channel: string, h: (...a: unknown[]) => unknown) => state.ipc.set(channel, h), removeHandler: () => {} },
    protocol: {
      registerSchemesAsPrivileged: (schemes: unknown[]) => state.schemes.push(...schemes),
      handle: (_scheme: string, handler: (request: Request) => Promise<Response>) => (state.protocolHandler = handler),
    },
    session: {
      defaultSession: { setPermissionRequestHandler() {}, setPermissionCheckHandler() {}, webRequest: { onHeadersReceived() {} } },
    },
    shell: { openExternal: async () => {} },
    dialog: { showSaveDialog: async () => ({ canceled: true }) },
    utilityProcess: {
      fork: (...args: unknown[]) => {
        state.forks.push(args);
        const child = new FakeChild();
        state.children.push(child);
        return child;
      },
    },
  };
  return { state, electron };
});
vi.mock('electron', () => fake.electron);

const info: EngineInfo = {
  pid: 4242,
  versions: { node: '22.20.0', onnxruntime: '1.30.0', protocol: 1 },
  providers: [{ name: 'cpu', bundled: true, loads: true }],
  activeProvider: 'cpu',
};
const flush = () => new Promise((r) => setTimeout(r, 10));
/** The engine starts after start-up work (recovering interrupted answers from storage). */
const engineForked = () => vi.waitFor(() => expect(fake.state.children.length).toBeGreaterThan(0));

beforeEach(() => {
  vi.resetModules();
  const { state } = fake;
  state.app.removeAllListeners();
  (state.app.quit as ReturnType<typeof vi.fn>).mockClear();
  (state.app.whenReady as ReturnType<typeof vi.fn>).mockClear();
  state.userData = mkdtempSync(join(tmpdir(), 'tp-life-'));
  state.children.length = 0;
  state.forks.length = 0;
  state.ipc.clear();
  state.schemes.length = 0;
  state.FakeWindow.all.length = 0;
});
afterEach(() => vi.useRealTimers());

describe('Electron main lifecycle', () => {
  it('quits at once when another instance holds the lock', async () => {
    fake.state.lock = false;
    await import('../../src/main/index.js');
    expect(fake.state.app.quit).toHaveBeenCalled();
    expect(fake.state.app.whenReady).not.toHaveBeenCalled();
    fake.state.lock = true;
  });

  it('starts: app:// scheme, IPC for every call, a sandboxed window, the engine as a utility process', async () => {
    await import('../../src/main/index.js');
    await engineForked();
    const { state } = fake;
    expect(state.schemes).toEqual([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
    expect([...state.ipc.keys()].sort()).toEqual(appCallNames.map(appCallChannel).sort());
    expect(state.FakeWindow.all).toHaveLength(1);
    expect(state.FakeWindow.all[0].options).toMatchObject({
      webPreferences: { sandbox: true, contextIsolation: true, nodeIntegration: false },
    });
    const [entry, args, options] = state.forks[0] as [string, string[], { serviceName: string }];
    expect(entry).toMatch(/engine\.cjs$/);
    expect(args).toEqual(['--model-store', join(state.userData, 'models')]);
    expect(options.serviceName).toBe('transprune-engine');

    const page = await state.protocolHandler!(new Request('app://renderer/index.html'));
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('forwards the handshake and crash reasons to the window, and restarts the engine', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    await import('../../src/main/index.js');
    await engineForked();
    const { state } = fake;
    const window = state.FakeWindow.all[0];
    state.children[0].emit('message', { event: 'ready', payload: info });
    expect(window.sent.at(-1)).toEqual([APP_EVENT_CHANNEL, { event: 'engine.status', payload: { state: 'ready', restarts: 0, info } }]);

    state.app.emit('child-process-gone', {}, { type: 'Utility', serviceName: 'transprune-engine', reason: 'oom', exitCode: 9 });
    state.children[0].emit('exit', 9);
    expect(window.sent.at(-1)).toMatchObject([
      APP_EVENT_CHANNEL,
      { event: 'engine.status', payload: { state: 'crashed', reason: 'oom (exit code 9)' } },
    ]);
    await vi.advanceTimersByTimeAsync(300);
    expect(state.children).toHaveLength(2);
    expect(window.sent.at(-1)).toMatchObject([
      APP_EVENT_CHANNEL,
      { event: 'engine.status', payload: { state: 'restarting', reason: 'oom (exit code 9)', restarts: 1 } },
    ]);
  });

  it('a packaged app ignores ELECTRON_RENDERER_URL: it loads app:// and its IPC refuses the other page', async () => {
    const { state } = fake;
    const env = process.env.ELECTRON_RENDERER_URL;
    process.env.ELECTRON_RENDERER_URL = 'http://127.0.0.1:6666/';
    Object.assign(state.app, { isPackaged: true });
    Object.assign(process, { resourcesPath: state.userData });
    try {
      await import('../../src/main/index.js');
      await engineForked();
    } finally {
      Object.assign(state.app, { isPackaged: false });
      if (env === undefined) delete process.env.ELECTRON_RENDERER_URL;
      else process.env.ELECTRON_RENDERER_URL = env;
    }
    expect(state.FakeWindow.all[0].loaded).toEqual(['app://renderer/index.html']);
    const getSettings = state.ipc.get(appCallChannel('settings.get'))!;
    const from = (url: string) => getSettings({ senderFrame: { url, parent: null } }, {});
    expect(await from('http://127.0.0.1:6666/')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await from('app://renderer/index.html')).toMatchObject({ ok: true });
  });

  it('holds the quit until the engine has shut down', async () => {
    await import('../../src/main/index.js');
    await engineForked();
    const { state } = fake;
    const child = state.children[0];
    child.emit('message', { event: 'ready', payload: info });
    const quitEvent = { preventDefault: vi.fn() };
    state.app.emit('before-quit', quitEvent);
    expect(quitEvent.preventDefault).toHaveBeenCalled();
    expect(child.posted).toContainEqual(expect.objectContaining({ type: 'shutdown', payload: {} }));
    expect(state.app.quit).not.toHaveBeenCalled();
    child.emit('exit', 0);
    await flush();
    expect(state.app.quit).toHaveBeenCalledTimes(1);
    const second = { preventDefault: vi.fn() };
    state.app.emit('before-quit', second);
    expect(second.preventDefault).not.toHaveBeenCalled();
  });
});
