import { app, utilityProcess } from 'electron';
import { exitReason, type SpawnEngine } from './engine-process.js';

export const ENGINE_SERVICE_NAME = 'transprune-engine';

/**
 * Starts the engine as an Electron utilityProcess. The crash reason comes from
 * `child-process-gone` (e.g. "crashed", "oom"), which says more than the exit code.
 */
export function electronEngineSpawner(entry: string, modelStore: string): SpawnEngine {
  return () => {
    const child = utilityProcess.fork(entry, ['--model-store', modelStore], { serviceName: ENGINE_SERVICE_NAME, stdio: 'inherit' });
    let goneReason: string | undefined;
    const onGone = (_event: unknown, details: Electron.Details) => {
      if (details.type === 'Utility' && details.serviceName === ENGINE_SERVICE_NAME && details.reason !== 'clean-exit') {
        goneReason = `${details.reason} (exit code ${details.exitCode})`;
      }
    };
    app.on('child-process-gone', onGone);
    return {
      get pid() {
        return child.pid;
      },
      post: (message) => child.postMessage(message),
      onMessage: (listener) => child.on('message', listener),
      onExit: (listener) =>
        child.once('exit', (code) => {
          app.off('child-process-gone', onGone);
          listener(goneReason ?? exitReason(code, null));
        }),
      kill: () => child.kill(),
    };
  };
}
