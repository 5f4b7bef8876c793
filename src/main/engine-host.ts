import { AsyncResource } from 'node:async_hooks';
import {
  ENGINE_PROTOCOL_VERSION,
  EngineInfo,
  EngineOutMessage,
  engineCalls,
  parseCallEvent,
  type EngineCallEvent,
  type EngineCallName,
  type EngineRequest,
  type EngineResponse,
  type EngineStatus,
} from '../shared/ipc.js';
import { CodedError, describeIssues } from '../shared/result.js';
import type { EngineProcess, SpawnEngine } from './engine-process.js';

/**
 * Owns the engine process: starts it, waits for its ready handshake, sends typed calls with
 * request ids, routes streamed events to their caller, restarts it with backoff when it dies,
 * and shuts it down cleanly. Electron and Node share this; only `spawn` differs. Electron-free.
 */

export interface EngineHostOptions {
  spawn: SpawnEngine;
  readyTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  /** Delay before restart attempt n (the last entry repeats). */
  restartBackoffMs?: number[];
  /** Consecutive crashes before the host stops trying (until `restart()` is called). */
  maxConsecutiveCrashes?: number;
  /** Up this long after ready, a crash no longer counts as consecutive. */
  stableAfterMs?: number;
  /**
   * While calls are in flight the host pings the engine; silent this long, the engine is wedged (a
   * loop in JavaScript never reads its messages): it is killed and restarted, and the calls fail
   * naming themselves. Long enough for the longest single `session.run` of a big model on a slow CPU.
   */
  wedgedAfterMs?: number;
}

export interface CallOptions<K extends EngineCallName> {
  signal?: AbortSignal;
  /** The events the engine streams for this call (progress, text...), each checked against the contract. */
  onEvent?: (event: EngineCallEvent<K>) => void;
}

interface Pending {
  name: EngineCallName;
  resolve(value: unknown): void;
  reject(error: CodedError): void;
  /** Hands a streamed event to the caller; false when it is not one of the call's events or fails its schema. */
  deliver(event: string, payload: unknown): boolean;
}

const DEFAULTS = {
  readyTimeoutMs: 60_000,
  shutdownTimeoutMs: 5_000,
  restartBackoffMs: [250, 1_000, 3_000, 10_000],
  maxConsecutiveCrashes: 5,
  stableAfterMs: 30_000,
  wedgedAfterMs: 120_000,
};

export class EngineHost {
  private readonly options: typeof DEFAULTS & { spawn: SpawnEngine };
  private process: EngineProcess | undefined;
  private current: EngineStatus = { state: 'stopped', restarts: 0 };
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private consecutiveCrashes = 0;
  private readyAt = 0;
  private readyTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Why the host itself killed a launch (handshake timeout or mismatch); reported instead of the kill signal. */
  private lastFailure: string | undefined;
  private readonly statusListeners = new Set<(status: EngineStatus) => void>();
  private readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  /** When the running engine last sent anything, and when the watchdog last asked it to. */
  private lastHeard = 0;
  private lastPinged = 0;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(options: EngineHostOptions) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...DEFAULTS, ...given } as typeof this.options;
  }

  get status(): EngineStatus {
    return this.current;
  }

  /** The engine's process id while one runs (tests and the e2e kill it to prove restart). */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  onStatus(listener: (status: EngineStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Starts the engine; resolves at its ready handshake, rejects if it cannot get there. */
  start(): Promise<void> {
    this.stopping = false;
    clearTimeout(this.restartTimer);
    const ready = this.whenReady();
    if (!this.process) this.launch('starting');
    return ready;
  }

  /** Resolves when the engine is (or next becomes) ready; rejects if the host gives up or shuts down. */
  whenReady(): Promise<void> {
    if (this.current.state === 'ready' || this.current.state === 'busy') return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Stops the running engine (if any) and starts a fresh one; also re-arms a host that gave up. */
  async restart(): Promise<void> {
    this.consecutiveCrashes = 0;
    await this.shutdown();
    await this.start();
  }

  async call<K extends EngineCallName>(name: K, request: EngineRequest<K>, options: CallOptions<K> = {}): Promise<EngineResponse<K>> {
    const engine = this.process;
    if (!engine || (this.current.state !== 'ready' && this.current.state !== 'busy')) {
      throw new CodedError(
        'engine-unavailable',
        `the engine is ${this.current.state}${this.current.reason ? ` (${this.current.reason})` : ''}`,
      );
    }
    if (options.signal?.aborted) throw new CodedError('cancelled', 'cancelled');
    const id = this.nextId++;
    // A call's events run in its caller's async context, as if the caller had awaited them (the web host routes them by it).
    const onEvent = options.onEvent && AsyncResource.bind(options.onEvent);
    const deliver = (event: string, payload: unknown) => {
      const parsed = parseCallEvent(name, event, payload);
      if (parsed) onEvent?.(parsed);
      return parsed !== null;
    };
    const response = new Promise<unknown>((resolve, reject) => this.pending.set(id, { name, resolve, reject, deliver }));
    const onAbort = () => this.send(engine, 'cancel', { id });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.send(engine, name, request, id);
    this.updateBusy();
    this.watch(engine);
    try {
      return (await response) as EngineResponse<K>;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.pending.delete(id);
      this.updateBusy();
    }
  }

  /** Asks the engine to exit, kills it after the timeout, and stays stopped. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const engine = this.process;
    if (!engine) {
      this.setStatus({ state: 'stopped', reason: 'shut down' });
      return;
    }
    const exited = new Promise<void>((resolve) => engine.onExit(() => resolve()));
    this.send(engine, 'shutdown', {});
    const timer = setTimeout(() => engine.kill(), this.options.shutdownTimeoutMs);
    await exited;
    clearTimeout(timer);
  }

  private launch(state: 'starting' | 'restarting'): void {
    const engine = this.options.spawn();
    this.process = engine;
    this.setStatus({ state, reason: state === 'restarting' ? this.current.reason : undefined });
    engine.onMessage((message) => this.receive(engine, message));
    engine.onExit((reason) => this.exited(engine, reason));
    this.readyTimer = setTimeout(() => {
      this.failLaunch(engine, `no ready handshake within ${this.options.readyTimeoutMs} ms`);
    }, this.options.readyTimeoutMs);
  }

  private receive(engine: EngineProcess, raw: unknown): void {
    if (engine !== this.process) return;
    this.lastHeard = Date.now();
    const parsed = EngineOutMessage.safeParse(raw);
    if (!parsed.success) {
      console.error(`engine host: dropped a malformed message: ${String(JSON.stringify(raw)).slice(0, 200)}`);
      return;
    }
    const message = parsed.data;
    if ('ok' in message) this.settle(message.id, message);
    else if (message.event === 'ready') this.handshake(engine, message.payload);
    else {
      const pending = message.id === undefined ? undefined : this.pending.get(message.id);
      if (pending && !pending.deliver(message.event, message.payload)) {
        console.error(`engine host: dropped event "${message.event}" that fails the contract of ${pending.name}`);
      }
    }
  }

  private handshake(engine: EngineProcess, payload: unknown): void {
    clearTimeout(this.readyTimer);
    const info = EngineInfo.safeParse(payload);
    if (!info.success) {
      this.failLaunch(engine, `malformed ready handshake: ${describeIssues(info.error)}`);
      return;
    }
    if (info.data.versions.protocol !== ENGINE_PROTOCOL_VERSION) {
      this.failLaunch(engine, `engine speaks protocol ${info.data.versions.protocol}, host expects ${ENGINE_PROTOCOL_VERSION}`);
      return;
    }
    this.readyAt = Date.now();
    this.setStatus({ state: 'ready', info: info.data });
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
  }

  private settle(
    id: number,
    message: { ok: true; value: unknown } | { ok: false; error: { code: CodedError['code']; message: string } },
  ): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    if (!message.ok) {
      pending.reject(new CodedError(message.error.code, message.error.message));
      return;
    }
    const value = engineCalls[pending.name].response.safeParse(message.value);
    if (value.success) pending.resolve(value.data);
    else pending.reject(new CodedError('internal', `engine answered ${pending.name} outside the contract: ${describeIssues(value.error)}`));
  }

  /** Pings the engine while calls are in flight; kills it when it stays silent past `wedgedAfterMs`. */
  private watch(engine: EngineProcess): void {
    if (this.watchdog) return;
    const limit = this.options.wedgedAfterMs;
    this.lastHeard = this.lastPinged = Date.now();
    this.watchdog = setInterval(
      () => {
        const calls = [...new Set([...this.pending.values()].map((p) => p.name))];
        if (engine !== this.process || calls.length === 0) return this.stopWatching();
        // Silence counts from the first question it left unanswered, so a late tick of this timer never blames the engine.
        if (this.lastHeard >= this.lastPinged) {
          this.lastPinged = Date.now();
          return this.send(engine, 'ping', {});
        }
        const silentMs = Date.now() - this.lastPinged;
        if (silentMs < limit) return;
        this.stopWatching();
        this.failLaunch(engine, `stopped responding for ${Math.round(silentMs / 1000)} s during ${calls.join(', ')} and was restarted`);
      },
      Math.max(10, limit / 4),
    );
  }

  private stopWatching(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private failLaunch(engine: EngineProcess, reason: string): void {
    this.lastFailure = reason;
    engine.kill();
  }

  private exited(engine: EngineProcess, exitReason: string): void {
    if (engine !== this.process) return;
    clearTimeout(this.readyTimer);
    this.stopWatching();
    this.process = undefined;
    const reason = this.lastFailure ?? exitReason;
    this.lastFailure = undefined;
    for (const pending of this.pending.values()) {
      pending.reject(new CodedError('engine-crashed', `the engine stopped during ${pending.name}: ${reason}`));
    }
    this.pending.clear();
    if (this.stopping) {
      this.setStatus({ state: 'stopped', reason: 'shut down' });
      this.rejectWaiters('the engine was shut down');
      return;
    }
    this.crashed(reason);
  }

  private crashed(reason: string): void {
    if (this.readyAt && Date.now() - this.readyAt > this.options.stableAfterMs) this.consecutiveCrashes = 0;
    this.readyAt = 0;
    this.consecutiveCrashes++;
    this.setStatus({ state: 'crashed', reason });
    if (this.consecutiveCrashes >= this.options.maxConsecutiveCrashes) {
      const gaveUp = `crashed ${this.consecutiveCrashes} times in a row; last: ${reason}`;
      this.setStatus({ state: 'stopped', reason: gaveUp });
      this.rejectWaiters(gaveUp);
      return;
    }
    const backoff = this.options.restartBackoffMs;
    const delay = backoff[Math.min(this.consecutiveCrashes - 1, backoff.length - 1)];
    this.restartTimer = setTimeout(() => {
      this.current = { ...this.current, restarts: this.current.restarts + 1 };
      this.launch('restarting');
    }, delay);
  }

  private rejectWaiters(reason: string): void {
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(new CodedError('engine-unavailable', reason));
  }

  private updateBusy(): void {
    const state = this.current.state;
    if (state !== 'ready' && state !== 'busy') return;
    const busy = [...this.pending.values()].some((p) => p.name !== 'cancel');
    if (busy !== (state === 'busy')) this.setStatus({ state: busy ? 'busy' : 'ready' });
  }

  private setStatus(change: Pick<EngineStatus, 'state'> & Partial<EngineStatus>): void {
    // `info` describes the last engine that said ready; it is kept across a crash so the UI can still name its provider.
    this.current = { ...this.current, reason: undefined, ...change };
    for (const listener of this.statusListeners) listener(this.current);
  }

  private send<K extends EngineCallName>(engine: EngineProcess, name: K, request: EngineRequest<K>, id = this.nextId++): void {
    engine.post({ id, type: name, payload: request });
  }
}
