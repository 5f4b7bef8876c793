import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exitReason, type SpawnEngine } from './engine-process.js';

export interface NodeEngineOptions {
  modelStore: string;
  /** The engine entry: the built out/main/engine.js, or src/engine/worker/entry.ts (run through tsx). */
  entry?: string;
  /** Where the engine's stdout/stderr go; 'inherit' by default. */
  stdio?: 'inherit' | 'ignore';
}

/** The engine entry from source; `.ts` entries run with the tsx loader. */
export const ENGINE_SOURCE_ENTRY = fileURLToPath(new URL('../engine/worker/entry.ts', import.meta.url));

/** Starts the engine as a Node child process (web host, CLI, tests). */
export function nodeEngineSpawner(options: NodeEngineOptions): SpawnEngine {
  const entry = options.entry ?? ENGINE_SOURCE_ENTRY;
  if (!existsSync(entry)) throw new Error(`engine entry not found: ${entry}`);
  const execArgv = entry.endsWith('.ts') ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
  return () => {
    const child = fork(entry, ['--model-store', options.modelStore], {
      execArgv,
      stdio: ['ignore', options.stdio ?? 'inherit', options.stdio ?? 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    let exited: string | undefined;
    const exitListeners: ((reason: string) => void)[] = [];
    const finish = (reason: string) => {
      if (exited !== undefined) return;
      exited = reason;
      for (const listener of exitListeners) listener(reason);
    };
    child.on('exit', (code, signal) => finish(exitReason(code, signal)));
    child.on('error', (e) => finish(`failed to start: ${e.message}`));
    return {
      get pid() {
        return child.pid;
      },
      post: (message) => {
        if (child.connected) child.send(message as object);
      },
      onMessage: (listener) => child.on('message', listener),
      onExit: (listener) => (exited === undefined ? exitListeners.push(listener) : listener(exited)),
      kill: () => child.kill('SIGKILL'),
    };
  };
}
