import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createAppCore } from '../main/app-core.js';
import { nodeEngineSpawner } from '../main/engine-process-node.js';
import { bundledModelDir, defaultUserDataDir, modelStoreDir } from '../main/paths.js';
import type { ApiLogEntry } from '../shared/ipc-server.js';
import { DEFAULT_PORT, startApiServer } from './server.js';

/**
 * `npm run serve -- [--port 1234] [--model NAME] [--api-key KEY | --no-auth] [--host H] [--cors ORIGIN] [--allow-file-urls]
 * [--user-data DIR] [--store DIR]`: the local OpenAI-compatible server, headless, over the app's models and settings.
 */

const USAGE =
  'usage: npm run serve -- [--port 1234] [--model NAME] [--api-key KEY | --no-auth] [--host H] [--cors ORIGIN] [--allow-file-urls] [--user-data DIR] [--store DIR]';
const RESOURCES_DIR = fileURLToPath(new URL('../../resources', import.meta.url));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: String(DEFAULT_PORT) },
      model: { type: 'string' },
      'api-key': { type: 'string' },
      'no-auth': { type: 'boolean' },
      host: { type: 'string' },
      cors: { type: 'string' },
      'allow-file-urls': { type: 'boolean' },
      'user-data': { type: 'string' },
      store: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return void console.log(USAGE);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got ${values.port}`);
  if (values['no-auth'] && values['api-key'] !== undefined) throw new Error('--api-key and --no-auth exclude each other');
  if (values['api-key'] !== undefined && values['api-key'].length < 8) throw new Error('--api-key must be at least 8 characters');

  const userData = values['user-data'] ?? defaultUserDataDir();
  const core = createAppCore({
    spawn: nodeEngineSpawner({ modelStore: values.store ?? modelStoreDir(userData) }),
    userData,
    bundledModel: bundledModelDir(RESOURCES_DIR),
  });
  await core.start();
  const server = await startApiServer({
    backend: core,
    host: values.host,
    port,
    apiKey: values['no-auth'] ? null : values['api-key'],
    cors: values.cors,
    allowFileUrls: values['allow-file-urls'],
    model: values.model,
  }).catch(async (e: Error) => {
    await core.stop();
    throw e;
  });
  const models = (await core.engine.call('models.list', {})).map((m) => m.name);
  const served = values.model === undefined ? models : models.filter((m) => m === values.model);

  console.log('TransPrune Studio: local OpenAI-compatible server');
  console.log(`  base URL  ${server.baseUrl}`);
  console.log(`  API key   ${server.apiKey ?? '(none: --no-auth)'}`);
  console.log(
    `  models    ${served.join(', ') || '(none installed: import one in the app, or with `npm run cli -- import <folder> --store <store>`)'}`,
  );
  if (server.exposed) {
    console.warn(`\nWARNING: listening on ${values.host}: this server is REACHABLE FROM THE NETWORK.`);
    console.warn(
      server.apiKey === null
        ? 'WARNING: and it has NO API KEY: anyone who can reach this machine can run the model on it.'
        : 'Anyone who can reach this machine and has the key can run the model on it.',
    );
  }
  server.onLog((entry) => console.log(logLine(entry)));

  const stop = () =>
    void server
      .close()
      .then(() => core.stop())
      .finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** One line per finished request: what it asked, how it ended, its tokens and time. */
function logLine(entry: ApiLogEntry): string {
  const time = new Date(entry.at).toISOString().slice(11, 19);
  const tokens = entry.promptTokens === undefined ? '' : ` ${entry.promptTokens}+${entry.completionTokens} tokens`;
  const what = [entry.model, entry.stream && 'stream', entry.outcome !== 'done' && entry.outcome].filter(Boolean).join(' ');
  return `${time} ${entry.method} ${entry.path} ${entry.status}${what ? ` ${what}` : ''}${tokens} ${entry.ms} ms${entry.error ? ` (${entry.error})` : ''}`;
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
