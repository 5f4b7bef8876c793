import {
  WsServerMessage,
  type AppCallName,
  type AppEventName,
  type AppEventPayload,
  type AppRequest,
  type AppResponse,
} from '../../shared/ipc.js';
import { err, type Result } from '../../shared/result.js';
import type { Client } from './client.js';

type Listener = (payload: unknown) => void;

/**
 * The Client over the web host's WebSocket (src/web/server.ts). Calls made before the socket
 * opens wait for it. If the socket drops, pending calls fail, the engine status reads "stopped",
 * and the client reconnects with backoff, then pushes the fresh engine status to its listeners.
 */
export class WebClient implements Client {
  private socket: WebSocket | undefined;
  private opened: Promise<WebSocket> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (result: Result<unknown>) => void>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private closedByUser = false;
  private failedReconnects = 0;

  constructor(private readonly url: string) {}

  /** ws://<page host>/api?token=... for a page the web host served at /#token=... (the token the host printed). */
  static forPage(location: Pick<Location, 'protocol' | 'host' | 'hash'>): WebClient {
    const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
    return new WebClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api?token=${encodeURIComponent(token)}`);
  }

  async call<K extends AppCallName>(name: K, request: AppRequest<K>): Promise<Result<AppResponse<K>>> {
    let socket: WebSocket;
    try {
      socket = await this.connect();
    } catch {
      return err('engine-unavailable', `cannot reach the web host at ${this.url}`);
    }
    const id = this.nextId++;
    const result = new Promise<Result<unknown>>((resolve) => this.pending.set(id, resolve));
    socket.send(JSON.stringify({ id, call: name, payload: request }));
    return result as Promise<Result<AppResponse<K>>>;
  }

  on<E extends AppEventName>(event: E, listener: (payload: AppEventPayload<E>) => void): () => void {
    const set = this.listeners.get(event) ?? new Set<Listener>();
    this.listeners.set(event, set);
    set.add(listener as Listener);
    void this.connect().catch(() => {}); // events flow as soon as the socket is open
    return () => void set.delete(listener as Listener);
  }

  close(): void {
    this.closedByUser = true;
    this.socket?.close();
  }

  private connect(): Promise<WebSocket> {
    if (this.opened) return this.opened;
    this.opened = new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      let wasOpen = false;
      socket.addEventListener('open', () => {
        wasOpen = true;
        resolve(socket);
      });
      socket.addEventListener('error', () => {}); // always followed by 'close', handled there
      socket.addEventListener('message', (event) => this.receive(String(event.data)));
      socket.addEventListener('close', () => {
        this.opened = undefined;
        reject(new Error('closed'));
        for (const resolvePending of this.pending.values())
          resolvePending(err('engine-unavailable', 'lost the connection to the web host'));
        this.pending.clear();
        // Without the host there is no engine either; say so rather than keep showing the last status.
        if (wasOpen) this.emit('engine.status', { state: 'stopped', reason: 'lost the connection to the web host', restarts: 0 });
        if (!this.closedByUser) this.reconnectLater(wasOpen);
      });
    });
    return this.opened;
  }

  /** Each failed attempt closes its socket, which schedules the next one: 0.5 s doubling to 5 s. */
  private reconnectLater(afterOpen: boolean): void {
    this.failedReconnects = afterOpen ? 0 : this.failedReconnects + 1;
    const delay = Math.min(500 * 2 ** this.failedReconnects, 5_000);
    setTimeout(async () => {
      if (this.closedByUser) return;
      const status = await this.call('engine.status', {});
      if (status.ok) this.emit('engine.status', status.value);
    }, delay);
  }

  private emit(event: string, payload: unknown): void {
    this.listeners.get(event)?.forEach((listener) => listener(payload));
  }

  private receive(data: string): void {
    let parsed: ReturnType<typeof WsServerMessage.safeParse>;
    try {
      parsed = WsServerMessage.safeParse(JSON.parse(data));
    } catch {
      return;
    }
    if (!parsed.success) return;
    const message = parsed.data;
    if ('id' in message) {
      this.pending.get(message.id)?.(message.result as Result<unknown>);
      this.pending.delete(message.id);
    } else {
      this.emit(message.event, message.payload);
    }
  }
}
