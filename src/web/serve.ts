import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundledModelDir, defaultUserDataDir } from '../main/paths.js';
import { startWebHost } from './server.js';

/** `npm run web [-- --port N --user-data DIR]`: the real UI in a browser, against the real engine. */

const RENDERER_DIR = fileURLToPath(new URL('../../out/renderer', import.meta.url));
const RESOURCES_DIR = fileURLToPath(new URL('../../resources', import.meta.url));

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '5180' }, 'user-data': { type: 'string' } }, strict: true });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got ${values.port}`);
  if (!existsSync(`${RENDERER_DIR}/index.html`)) throw new Error('no built renderer in out/renderer: run `npm run build` first');
  const host = await startWebHost({
    rendererDir: RENDERER_DIR,
    userData: values['user-data'] ?? defaultUserDataDir(),
    port,
    bundledModel: bundledModelDir(RESOURCES_DIR),
  });
  console.log(`TransPrune Studio (browser preview): ${host.url}`);
  const stop = () => void host.close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
