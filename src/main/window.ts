import { BrowserWindow, shell, type Session } from 'electron';
import { devServerCsp, isAllowedExternal, originOf } from './security.js';

/**
 * The main window and the session rules around it: sandboxed, isolated renderer; no navigation
 * away from the app, no new windows, no permissions, CSP on every response.
 */

export interface WindowOptions {
  preload: string;
  /** The renderer's entry URL: app://renderer/index.html, or the Vite dev server in `npm run dev`. */
  url: string;
}

export const WEB_PREFERENCES = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  webviewTag: false,
  spellcheck: false,
} as const;

export function createMainWindow({ preload, url }: WindowOptions): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'TransPrune Studio',
    webPreferences: { ...WEB_PREFERENCES, preload },
  });
  const origin = originOf(url);
  const contents = window.webContents;
  // Navigating elsewhere (a dropped file the page did not take, a link) would leave our origin.
  contents.on('will-navigate', (event, target) => {
    if (originOf(target) !== origin) event.preventDefault();
  });
  contents.on('will-redirect', (event, target) => {
    if (originOf(target) !== origin) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url: target }) => {
    // Only https links to a few known sites leave the app, and then in the user's browser, never in a new app window.
    if (isAllowedExternal(target)) void shell.openExternal(target);
    return { action: 'deny' };
  });
  window.once('ready-to-show', () => window.show());
  void window.loadURL(url);
  return window;
}

/** Denies every permission request and check, and adds the CSP header to dev-server responses. */
export function hardenSession(session: Session, devOrigin?: string): void {
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
  if (!devOrigin) return; // app:// responses carry the CSP themselves (protocol.ts)
  const csp = devServerCsp(devOrigin);
  session.webRequest.onHeadersReceived({ urls: [`${devOrigin}/*`] }, (details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } });
  });
}
