import { parseArgs } from 'node:util';
import { ENGINE_PROTOCOL_VERSION, type EngineInfo, type EngineOutMessage } from '../../shared/ipc.js';
import type { Engine } from '../runtime/engine.js';
import { removeAbandonedImports } from '../pack/store.js';
import { createHandlers } from './handlers.js';
import { serveEngine } from './loop.js';
import { connectToParent } from './port.js';
import { createProbeSession, onnxruntimeVersion, preferredProvider, probeProviders } from './providers.js';

/**
 * The engine process. Started by the engine host (src/main/engine-host.ts) as an Electron
 * utilityProcess or a Node child process; plain Node, no electron imports.
 * Arguments: --model-store <dir>.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'model-store': { type: 'string' } }, strict: true });
  const modelStore = values['model-store'];
  if (!modelStore) throw new Error('engine: --model-store <dir> is required');

  const port = connectToParent();
  port.onDisconnect(() => process.exit(0));
  const abandoned = await removeAbandonedImports(modelStore);
  if (abandoned.length) console.error(`engine: removed ${abandoned.length} folder(s) of interrupted imports`);

  const providers = await probeProviders();
  const activeProvider = preferredProvider(providers);
  const probeSession = await createProbeSession(activeProvider);
  let runtime: Promise<Engine> | undefined;
  const handlers = createHandlers({
    modelStore,
    activeProvider,
    probeSession,
    runtime: () => (runtime ??= import('../runtime/engine.js').then(({ Engine }) => new Engine({ modelStore }))),
  });

  serveEngine(port, handlers, async () => {
    // Release native sessions before exit: onnxruntime can crash when torn down mid-exit.
    await probeSession.release();
    await runtime?.then((engine) => engine.unload()).catch(() => {});
    process.exit(0);
  });

  const info: EngineInfo = {
    pid: process.pid,
    versions: { node: process.versions.node, onnxruntime: onnxruntimeVersion(), protocol: ENGINE_PROTOCOL_VERSION },
    providers,
    activeProvider,
  };
  await port.post({ event: 'ready', payload: info } satisfies EngineOutMessage);
}

main().catch((e) => {
  console.error(`engine: failed to start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
