import { app, BrowserWindow, ipcMain, protocol, session } from 'electron';
import { join } from 'node:path';
import { EngineHost } from './engine-host.js';
import { electronEngineSpawner } from './engine-process-electron.js';
import { createAppHandlers, forwardAppEvents } from './handlers.js';
import { registerAppIpc, sendAppEvent } from './ipc.js';
import { modelStoreDir } from './paths.js';
import { APP_ENTRY_URL, APP_SCHEME, rendererRoot, staticResponse } from './protocol.js';
import { originOf } from './security.js';
import { createMainWindow, hardenSession } from './window.js';

/**
 * Electron main: lifecycle glue only. The app API lives in handlers.ts (shared with the web
 * host), the engine in its own process behind engine-host.ts.
 * Built to out/main/index.cjs; the engine entry beside it as out/main/engine.cjs.
 */

// Before ready: app:// is a standard, secure scheme so it gets an origin, fetch and CSP like https.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  void app.whenReady().then(startApp);
}

async function startApp(): Promise<void> {
  const devUrl = process.env.ELECTRON_RENDERER_URL; // set by `electron-vite dev`
  const url = devUrl ?? APP_ENTRY_URL;
  const rendererDir = rendererRoot(__dirname);
  protocol.handle(APP_SCHEME, async (request) => {
    const { status, headers, body } = await staticResponse(rendererDir, new URL(request.url).pathname);
    return new Response(body, { status, headers });
  });
  hardenSession(session.defaultSession, devUrl ? originOf(devUrl)! : undefined);

  const engine = new EngineHost({ spawn: electronEngineSpawner(join(__dirname, 'engine.cjs'), modelStoreDir(app.getPath('userData'))) });
  const context = { engine };
  registerAppIpc(ipcMain, createAppHandlers(context), originOf(url)!);
  forwardAppEvents(context, (event, payload) => {
    for (const window of BrowserWindow.getAllWindows()) sendAppEvent(window.webContents, event, payload);
  });

  let window = createMainWindow({ preload: join(__dirname, '../preload/index.cjs'), url });
  app.on('second-instance', () => {
    if (window.isMinimized()) window.restore();
    window.focus();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) window = createMainWindow({ preload: join(__dirname, '../preload/index.cjs'), url });
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  quitAfterEngineShutdown(engine);
  engine.start().catch((e: Error) => console.error(`engine did not start: ${e.message}`));
}

/** Holds the first quit until the engine has shut down (or been killed after its timeout). */
function quitAfterEngineShutdown(engine: EngineHost): void {
  let engineStopped = false;
  app.on('before-quit', (event) => {
    if (engineStopped) return;
    event.preventDefault();
    void engine.shutdown().finally(() => {
      engineStopped = true;
      app.quit();
    });
  });
}
