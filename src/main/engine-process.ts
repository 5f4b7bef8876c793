/**
 * How the engine host sees one running engine process, whatever started it: an Electron
 * utilityProcess (engine-process-electron.ts) or a Node child process (engine-process-node.ts).
 * The host's logic (handshake, restart, shutdown) is written once against this.
 */
export interface EngineProcess {
  readonly pid: number | undefined;
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Fires once when the process has ended, with a human-readable reason ("exited with code 1", "killed by SIGKILL"). */
  onExit(listener: (reason: string) => void): void;
  kill(): void;
}

export type SpawnEngine = () => EngineProcess;

export function exitReason(code: number | null, signal: string | null): string {
  if (signal) return `killed by ${signal}`;
  return code === 0 ? 'exited' : `exited with code ${code}`;
}
