import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the app keeps its data, electron-free so the web host and the CLI find the same folders
 * as the desktop app. Mirrors Electron's `app.getPath('userData')` for our product name.
 */
export const PRODUCT_NAME = 'TransPrune Studio';

export function defaultUserDataDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), PRODUCT_NAME);
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', PRODUCT_NAME);
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), PRODUCT_NAME);
}

/** The demo checkpoint shipped with the app, in its resources folder (extraResources when packaged, the repository's resources/ otherwise). */
export function bundledModelDir(resourcesDir: string): string {
  return join(resourcesDir, 'demo-model');
}

/**
 * The model store: one folder per installed pack. The app, the browser preview and the CLI share it:
 * `$TRANSPRUNE_HOME/models` when that is set (for all of them), else the user-data folder's `models`
 * (the CLI uses the app's own user-data folder, so a model is imported once).
 */
export function modelStoreDir(userData: string = defaultUserDataDir(), env: NodeJS.ProcessEnv = process.env): string {
  return env.TRANSPRUNE_HOME ? join(env.TRANSPRUNE_HOME, 'models') : join(userData, 'models');
}

/** Where the CLI kept its own store before it shared the app's: doctor points at models left there. */
export function formerCliStoreDir(): string {
  return join(homedir(), '.cache', 'transprune-studio', 'models');
}
