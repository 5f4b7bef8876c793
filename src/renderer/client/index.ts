import type { Client } from './client.js';
import { ElectronClient } from './electron-client.js';
import { WebClient } from './web-client.js';

export type { Client } from './client.js';
export { ElectronClient } from './electron-client.js';
export { WebClient } from './web-client.js';

/** The preload's bridge inside Electron, the web host's socket in a browser. */
export function createClient(): Client {
  return window.api ? new ElectronClient(window.api) : WebClient.forPage(window.location);
}
