import { app, BrowserWindow, dialog, ipcMain, protocol, session } from 'electron';
import { join } from 'node:path';
import { createAppCore, type AppCore } from './app-core.js';
import { electronEngineSpawner } from './engine-process-electron.js';
import { registerAppIpc, sendAppEvent } from './ipc.js';
import { bundledModelDir, modelStoreDir } from './paths.js';
import { APP_ENTRY_URL, APP_SCHEME, rendererRoot, staticResponse } from './protocol.js';
import { originOf, rendererEntryUrl } from './security.js';
import { createMainWindow, hardenSession } from './window.js';

/**
 * Electron main: lifecycle glue only. The app API lives in app-core.ts (shared with the web
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
  const { url, devUrl } = rendererEntryUrl(app.isPackaged, process.env, APP_ENTRY_URL); // devUrl: `electron-vite dev`
  const rendererDir = rendererRoot(__dirname);
  protocol.handle(APP_SCHEME, async (request) => {
    const { status, headers, body } = await staticResponse(rendererDir, new URL(request.url).pathname);
    return new Response(body, { status, headers });
  });
  hardenSession(session.defaultSession, devUrl ? originOf(devUrl)! : undefined);

  const userData = app.getPath('userData');
  const core = createAppCore({
    spawn: electronEngineSpawner(join(__dirname, 'engine.cjs'), modelStoreDir(userData)),
    userData,
    // extraResources in a packaged app; the repository's resources/ in development.
    bundledModel: bundledModelDir(app.isPackaged ? join(process.resourcesPath, 'resources') : join(app.getAppPath(), 'resources')),
    chooseSavePath: async (suggestedName) => {
      const owner = BrowserWindow.getFocusedWindow() ?? BrowserWindow.getAllWindows()[0];
      const options = { defaultPath: join(app.getPath('downloads'), suggestedName) };
      const choice = owner ? await dialog.showSaveDialog(owner, options) : await dialog.showSaveDialog(options);
      return choice.canceled || !choice.filePath ? null : choice.filePath;
    },
  });
  registerAppIpc(ipcMain, core.handlers, originOf(url)!);
  core.onEvent((event, payload) => {
    for (const window of BrowserWindow.getAllWindows()) sendAppEvent(window.webContents, event, payload);
  });

  const preload = join(__dirname, '../preload/index.cjs');
  let window = createMainWindow({ preload, url });
  app.on('second-instance', () => {
    if (window.isMinimized()) window.restore();
    window.focus();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) window = createMainWindow({ preload, url });
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  quitAfterShutdown(core);
  core.start().catch((e: Error) => console.error(`start-up: ${e.message}`));
}

/** Holds the first quit until answers are saved and the engine has shut down (or was killed after its timeout). */
function quitAfterShutdown(core: AppCore): void {
  let stopped = false;
  app.on('before-quit', (event) => {
    if (stopped) return;
    event.preventDefault();
    void core.stop().finally(() => {
      stopped = true;
      app.quit();
    });
  });
}
