import { describe, expect, it } from 'vitest';
import { EngineHost } from '../../src/main/engine-host.js';
import type { EngineProcess } from '../../src/main/engine-process.js';
import { ENGINE_PROTOCOL_VERSION, type EngineInfo, type EngineStatus } from '../../src/shared/ipc.js';

/**
 * The host's failure paths, which a healthy engine never exercises: a process scripted at the
 * spawn seam (the same seam Electron's and Node's adapters implement) that misbehaves on purpose.
 * The healthy paths run against the real engine in tests/engine/worker-protocol.test.ts.
 */
class ScriptedProcess implements EngineProcess {
  static pids = 1000;
  readonly pid = ScriptedProcess.pids++;
  readonly posted: { id: number; type: string; payload: unknown }[] = [];
  killed = false;
  private messageListeners: ((m: unknown) => void)[] = [];
  private exitListeners: ((reason: string) => void)[] = [];
  private exited: string | undefined;

  constructor(
    private readonly onPost: (self: ScriptedProcess, message: { id: number; type: string; payload: unknown }) => void = () => {},
    private readonly answersShutdown = true,
  ) {}

  post(message: unknown): void {
    const m = message as { id: number; type: string; payload: unknown };
    this.posted.push(m);
    if (m.type === 'shutdown' && this.answersShutdown) this.exit('exited');
    else this.onPost(this, m);
  }
  onMessage(listener: (m: unknown) => void): void {
    this.messageListeners.push(listener);
  }
  onExit(listener: (reason: string) => void): void {
    if (this.exited !== undefined) listener(this.exited);
    else this.exitListeners.push(listener);
  }
  kill(): void {
    this.killed = true;
    this.exit('killed by SIGKILL');
  }
  emit(message: unknown): void {
    for (const l of this.messageListeners) l(message);
  }
  exit(reason: string): void {
    if (this.exited !== undefined) return;
    this.exited = reason;
    setImmediate(() => this.exitListeners.forEach((l) => l(reason)));
  }
  ready(protocol = ENGINE_PROTOCOL_VERSION): void {
    const info: EngineInfo = {
      pid: this.pid,
      versions: { node: '20', onnxruntime: '1.30.0', protocol },
      providers: [{ name: 'cpu', bundled: true, loads: true }],
      activeProvider: 'cpu',
    };
    this.emit({ event: 'ready', payload: info });
  }
}

function record(host: EngineHost): EngineStatus[] {
  const seen: EngineStatus[] = [];
  host.onStatus((s) => seen.push(s));
  return seen;
}

describe('engine host failure paths', () => {
  it('kills an engine that never says ready, retries with backoff, then gives up', async () => {
    const spawned: ScriptedProcess[] = [];
    const host = new EngineHost({
      spawn: () => spawned[spawned.push(new ScriptedProcess()) - 1],
      readyTimeoutMs: 30,
      restartBackoffMs: [10],
      maxConsecutiveCrashes: 2,
    });
    const seen = record(host);
    await expect(host.start()).rejects.toMatchObject({
      code: 'engine-unavailable',
      message: 'crashed 2 times in a row; last: no ready handshake within 30 ms',
    });
    expect(spawned).toHaveLength(2);
    expect(spawned.every((p) => p.killed)).toBe(true);
    expect(seen.map((s) => [s.state, s.reason])).toEqual([
      ['starting', undefined],
      ['crashed', 'no ready handshake within 30 ms'],
      ['restarting', 'no ready handshake within 30 ms'],
      ['crashed', 'no ready handshake within 30 ms'],
      ['stopped', 'crashed 2 times in a row; last: no ready handshake within 30 ms'],
    ]);
    await expect(host.call('models.list', {})).rejects.toMatchObject({ code: 'engine-unavailable' });
  });

  it('refuses an engine that speaks another protocol version', async () => {
    const engine = new ScriptedProcess();
    const host = new EngineHost({ spawn: () => engine, maxConsecutiveCrashes: 1 });
    const starting = host.start();
    engine.ready(ENGINE_PROTOCOL_VERSION + 1);
    await expect(starting).rejects.toThrow(
      `engine speaks protocol ${ENGINE_PROTOCOL_VERSION + 1}, host expects ${ENGINE_PROTOCOL_VERSION}`,
    );
  });

  it('kills an engine that ignores shutdown once the timeout passes', async () => {
    const engine = new ScriptedProcess(() => {}, false);
    const host = new EngineHost({ spawn: () => engine, shutdownTimeoutMs: 30 });
    const started = host.start();
    engine.ready();
    await started;
    await host.shutdown();
    expect(engine.posted.map((m) => m.type)).toEqual(['shutdown']);
    expect(engine.killed).toBe(true);
    expect(host.status).toMatchObject({ state: 'stopped', reason: 'shut down' });
  });

  it('rejects an answer outside the contract, and ignores malformed messages', async () => {
    const engine = new ScriptedProcess((self, m) => {
      if (m.type !== 'models.list') return;
      self.emit({ nonsense: true });
      self.emit({ id: m.id, ok: true, value: [{ id: 1 }] });
    });
    const host = new EngineHost({ spawn: () => engine });
    const started = host.start();
    engine.ready();
    await started;
    await expect(host.call('models.list', {})).rejects.toMatchObject({
      code: 'internal',
      message: expect.stringContaining('outside the contract'),
    });
    expect(host.status.state).toBe('ready');
    await host.shutdown();
  });

  it('passes engine error codes through to the caller', async () => {
    const engine = new ScriptedProcess((self, m) => {
      if (m.type === 'models.remove') self.emit({ id: m.id, ok: false, error: { code: 'not-found', message: 'no model "x"' } });
    });
    const host = new EngineHost({ spawn: () => engine });
    const started = host.start();
    engine.ready();
    await started;
    await expect(host.call('models.remove', { id: 'x' })).rejects.toMatchObject({ code: 'not-found', message: 'no model "x"' });
    await host.shutdown();
    expect(engine.killed).toBe(false);
  });

  it('kills an engine that stops answering during a call, names the call, and restarts it', async () => {
    const spawned: ScriptedProcess[] = [];
    // The first engine wedges on chat.ask: it reads nothing more, pings included. The second is healthy.
    const host = new EngineHost({
      spawn: () =>
        spawned[
          spawned.push(
            new ScriptedProcess((self, m) => {
              const wedged = spawned.indexOf(self) === 0 && self.posted.some((p) => p.type === 'chat.ask');
              if (!wedged && m.type === 'ping') self.emit({ id: m.id, ok: true, value: {} });
              if (!wedged && m.type === 'models.list') self.emit({ id: m.id, ok: true, value: [] });
              if (spawned.indexOf(self) > 0 && m.type !== 'ping') setImmediate(() => self.ready());
            }),
          ) - 1
        ],
      wedgedAfterMs: 200,
      restartBackoffMs: [10],
    });
    const seen = record(host);
    const started = host.start();
    spawned[0].ready();
    await started;
    const asked = host.call('chat.ask', { image: '/x.png', question: 'hi', method: { llm: { kind: 'none' } }, maxTokens: 4, ep: 'cpu' });
    await expect(asked).rejects.toMatchObject({
      code: 'engine-crashed',
      message: expect.stringMatching(/during chat\.ask: stopped responding for 0 s during chat\.ask and was restarted/),
    });
    expect(spawned[0].killed).toBe(true);
    expect(spawned[0].posted.filter((m) => m.type === 'ping').length).toBeGreaterThan(0);
    expect(seen.find((s) => s.state === 'crashed')?.reason).toMatch(/stopped responding .* during chat\.ask/);
    spawned.length === 1 && (await new Promise((r) => setTimeout(r, 50)));
    spawned[1]?.ready();
    await host.whenReady();
    expect(await host.call('models.list', {})).toEqual([]);
    await host.shutdown();
  });

  it('leaves a long call alone while the engine answers its pings', async () => {
    let asked: { id: number } | undefined;
    const engine = new ScriptedProcess((self, m) => {
      if (m.type === 'ping') self.emit({ id: m.id, ok: true, value: {} });
      if (m.type === 'models.list') asked = m;
    });
    const host = new EngineHost({ spawn: () => engine, wedgedAfterMs: 300 });
    const started = host.start();
    engine.ready();
    await started;
    const listing = host.call('models.list', {});
    await new Promise((r) => setTimeout(r, 1_200)); // four times the limit, pinged all along
    engine.emit({ id: asked!.id, ok: true, value: [] });
    expect(await listing).toEqual([]);
    expect(engine.killed).toBe(false);
    await host.shutdown();
  });
});
