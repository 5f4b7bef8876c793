import type { ApiLogEntry, LocalServerOptions, LocalServerStatus } from '../../shared/ipc-server.js';
import { CodedError } from '../../shared/result.js';
import { startApiServer, type ApiBackend, type ApiServer } from '../../api/server.js';
import type { AppHandlers } from '../app-handlers.js';

/** Requests the log keeps for Settings (the newest). */
export const LOG_LENGTH = 200;

export type LocalServerHandlers = Pick<AppHandlers, 'server.status' | 'server.start' | 'server.stop'>;

/**
 * The app's "Local server": main owns the OpenAI-compatible server (src/api) over its own engine and
 * settings, started and stopped from Settings, which shows its URL, key and the requests it served.
 * Off at every launch; a start picks a fresh key.
 */
export class LocalServer {
  private server: ApiServer | undefined;
  private options: LocalServerOptions | undefined;
  private readonly log: ApiLogEntry[] = [];
  private readonly listeners = new Set<(entry: ApiLogEntry) => void>();

  constructor(private readonly backend: ApiBackend) {}

  readonly handlers: LocalServerHandlers = {
    'server.status': async () => this.status(),
    'server.start': (options) => this.start(options),
    'server.stop': async () => {
      await this.stop();
      return this.status();
    },
  };

  /** Each request the server finishes; returns the unsubscribe. */
  onLog(listener: (entry: ApiLogEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(options: LocalServerOptions): Promise<LocalServerStatus> {
    await this.stop();
    this.options = options;
    try {
      this.server = await startApiServer({
        backend: this.backend,
        port: options.port,
        host: options.network ? '0.0.0.0' : undefined,
        apiKey: options.requireKey ? undefined : null,
        cors: options.cors,
        allowFileUrls: options.allowFileUrls,
        model: options.model,
      });
    } catch (e) {
      throw new CodedError('invalid-request', `The local server did not start: ${(e as Error).message}`);
    }
    this.server.onLog((entry) => {
      this.log.push(entry);
      this.log.splice(0, this.log.length - LOG_LENGTH);
      for (const listener of this.listeners) listener(entry);
    });
    return this.status();
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close();
  }

  status(): LocalServerStatus {
    const server = this.server;
    const running = server ? { baseUrl: server.baseUrl, apiKey: server.apiKey, exposed: server.exposed } : {};
    return { running: server !== undefined, ...running, options: this.options, log: [...this.log] };
  }
}
