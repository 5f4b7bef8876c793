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

/** One folder per installed model pack. */
export function modelStoreDir(userData: string): string {
  return join(userData, 'models');
}
