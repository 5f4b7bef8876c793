import { beforeEach, describe, expect, it, vi } from 'vitest';

/** The window's security settings and the session rules, with electron replaced by recording fakes. */

const fakes = vi.hoisted(() => {
  type Handler = (...args: unknown[]) => unknown;
  class FakeContents {
    handlers = new Map<string, Handler>();
    openHandler: Handler | undefined;
    on(event: string, handler: Handler) {
      this.handlers.set(event, handler);
    }
    setWindowOpenHandler(handler: Handler) {
      this.openHandler = handler;
    }
  }
  class FakeBrowserWindow {
    static created: FakeBrowserWindow[] = [];
    webContents = new FakeContents();
    loaded: string | undefined;
    constructor(public options: { webPreferences: Record<string, unknown> }) {
      FakeBrowserWindow.created.push(this);
    }
    once() {}
    show() {}
    async loadURL(url: string) {
      this.loaded = url;
    }
  }
  return { FakeBrowserWindow, openExternal: vi.fn(async () => {}) };
});

vi.mock('electron', () => ({ BrowserWindow: fakes.FakeBrowserWindow, shell: { openExternal: fakes.openExternal } }));

const { createMainWindow, hardenSession } = await import('../../src/main/window.js');

function navigationEvent() {
  return { preventDefault: vi.fn() };
}

describe('main window', () => {
  beforeEach(() => {
    fakes.FakeBrowserWindow.created.length = 0;
    fakes.openExternal.mockClear();
  });

  it('runs the renderer sandboxed and isolated, without node', () => {
    createMainWindow({ preload: '/app/out/preload/index.cjs', url: 'app://renderer/index.html' });
    const [window] = fakes.FakeBrowserWindow.created;
    expect(window.options.webPreferences).toMatchObject({
      preload: '/app/out/preload/index.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
    });
    expect(window.loaded).toBe('app://renderer/index.html');
  });

  it('refuses navigation and redirects away from the app origin', () => {
    createMainWindow({ preload: 'p', url: 'app://renderer/index.html' });
    const contents = fakes.FakeBrowserWindow.created[0].webContents;
    for (const event of ['will-navigate', 'will-redirect']) {
      const away = navigationEvent();
      contents.handlers.get(event)!(away, 'file:///home/me/photo.png');
      expect(away.preventDefault).toHaveBeenCalled();
      const evil = navigationEvent();
      contents.handlers.get(event)!(evil, 'https://evil.example/');
      expect(evil.preventDefault).toHaveBeenCalled();
      const inside = navigationEvent();
      contents.handlers.get(event)!(inside, 'app://renderer/index.html#settings');
      expect(inside.preventDefault).not.toHaveBeenCalled();
    }
    const webview = navigationEvent();
    contents.handlers.get('will-attach-webview')!(webview);
    expect(webview.preventDefault).toHaveBeenCalled();
  });

  it('never opens a new window; https links go to the system browser', () => {
    createMainWindow({ preload: 'p', url: 'app://renderer/index.html' });
    const open = fakes.FakeBrowserWindow.created[0].webContents.openHandler!;
    expect(open({ url: 'https://arxiv.org/abs/2507.20630' })).toEqual({ action: 'deny' });
    expect(open({ url: 'file:///etc/passwd' })).toEqual({ action: 'deny' });
    expect(open({ url: 'javascript:alert(1)' })).toEqual({ action: 'deny' });
    expect(open({ url: 'https://huggingface.co/llava-hf/llava-1.5-7b-hf' })).toEqual({ action: 'deny' });
    // Only a few known sites: not any https page, not a look-alike host, not credentials in the URL.
    for (const url of [
      'https://evil.example/',
      'https://huggingface.co.evil.example/',
      'https://user:pw@huggingface.co/',
      'http://huggingface.co/',
    ]) {
      expect(open({ url })).toEqual({ action: 'deny' });
    }
    expect(fakes.openExternal.mock.calls).toEqual([
      ['https://arxiv.org/abs/2507.20630'],
      ['https://huggingface.co/llava-hf/llava-1.5-7b-hf'],
    ]);
  });
});

describe('session hardening', () => {
  function fakeSession() {
    const session = {
      requestHandler: undefined as undefined | ((...a: unknown[]) => void),
      checkHandler: undefined as undefined | ((...a: unknown[]) => boolean),
      headers: undefined as undefined | { filter: { urls: string[] }; listener: (d: unknown, cb: (r: unknown) => void) => void },
      setPermissionRequestHandler(h: (...a: unknown[]) => void) {
        session.requestHandler = h;
      },
      setPermissionCheckHandler(h: (...a: unknown[]) => boolean) {
        session.checkHandler = h;
      },
      webRequest: {
        onHeadersReceived(filter: { urls: string[] }, listener: (d: unknown, cb: (r: unknown) => void) => void) {
          session.headers = { filter, listener };
        },
      },
    };
    return session;
  }

  it('denies every permission request and check', () => {
    const session = fakeSession();
    hardenSession(session as never);
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read']) {
      const callback = vi.fn();
      session.requestHandler!({}, permission, callback);
      expect(callback).toHaveBeenCalledWith(false);
      expect(session.checkHandler!({}, permission)).toBe(false);
    }
    // Production responses come from app:// with the CSP already set; no header rewriting needed.
    expect(session.headers).toBeUndefined();
  });

  it('adds a CSP to dev-server responses that allows only its HMR socket beyond self', () => {
    const session = fakeSession();
    hardenSession(session as never, 'http://localhost:5173');
    expect(session.headers!.filter.urls).toEqual(['http://localhost:5173/*']);
    const callback = vi.fn();
    session.headers!.listener({ responseHeaders: { 'Content-Type': ['text/html'] } }, callback);
    const headers = callback.mock.calls[0][0].responseHeaders;
    expect(headers['Content-Type']).toEqual(['text/html']);
    expect(headers['Content-Security-Policy'][0]).toContain("connect-src 'self' ws://localhost:5173");
    expect(headers['Content-Security-Policy'][0]).toContain("object-src 'none'");
  });
});

describe('renderer entry', () => {
  it('honours ELECTRON_RENDERER_URL in development only', async () => {
    const { rendererEntryUrl } = await import('../../src/main/security.js');
    const env = { ELECTRON_RENDERER_URL: 'http://127.0.0.1:6666' };
    expect(rendererEntryUrl(false, env, 'app://renderer/index.html')).toEqual({
      url: env.ELECTRON_RENDERER_URL,
      devUrl: env.ELECTRON_RENDERER_URL,
    });
    expect(rendererEntryUrl(true, env, 'app://renderer/index.html')).toEqual({ url: 'app://renderer/index.html' });
  });
});
