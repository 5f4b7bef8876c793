import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { EngineHost } from '../../src/main/engine-host.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import type { EngineProcess } from '../../src/main/engine-process.js';
import { ENGINE_PROTOCOL_VERSION, type EngineOutMessage, type EngineStatus } from '../../src/shared/ipc.js';
import type { CodedError } from '../../src/shared/result.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/** The real engine entry as a Node child process: handshake, ids, events, cancel, crash and restart. */

const modelStore = join(mkdtempSync(join(tmpdir(), 'tp-worker-')), 'models');
let pack: ImportedPack;

beforeAll(async () => {
  const checkpoint = await makeSyntheticCheckpoint(join(modelStore, '..', 'hf-tiny'));
  pack = await importCheckpoint(checkpoint.dir, modelStore, { name: 'Tiny LLaVA' });
  mkdirSync(join(modelStore, 'not-a-pack')); // no manifest: not listed
});

const spawn = nodeEngineSpawner({ modelStore });

/** Raw protocol: the bare process, no host in between. */
describe('engine process protocol', () => {
  let engine: EngineProcess;
  const received: EngineOutMessage[] = [];
  const next = (match: (m: EngineOutMessage) => boolean) =>
    new Promise<EngineOutMessage>((resolve) => {
      const poll = () => {
        const found = received.find(match);
        if (found) resolve(found);
        else setTimeout(poll, 10);
      };
      poll();
    });

  beforeAll(() => {
    engine = spawn();
    engine.onMessage((m) => received.push(m as EngineOutMessage));
  });
  afterAll(() => engine.kill());

  it('announces ready with versions and the providers that load', async () => {
    const ready = await next((m) => 'event' in m && m.event === 'ready');
    const info = (
      ready as {
        payload: {
          pid: number;
          versions: Record<string, unknown>;
          providers: { name: string; loads: boolean; bundled: boolean }[];
          activeProvider: string;
        };
      }
    ).payload;
    expect(info.pid).toBe(engine.pid);
    expect(info.versions).toEqual({ node: process.versions.node, onnxruntime: '1.30.0', protocol: ENGINE_PROTOCOL_VERSION });
    // This machine has no GPU: only the CPU provider may load, and it must.
    expect(info.providers.find((p) => p.name === 'cpu')).toEqual({ name: 'cpu', bundled: true, loads: true });
    expect(info.providers.filter((p) => p.loads).map((p) => p.name)).toEqual(['cpu']);
    expect(info.activeProvider).toBe('cpu');
  });

  it('answers each request under its own id, validating payloads', async () => {
    engine.post({ id: 7, type: 'models.list', payload: {} });
    engine.post({ id: 8, type: 'models.list', payload: { extra: 1 } });
    engine.post({ id: 9, type: 'no.such.call', payload: {} });
    const [seven, eight, nine] = await Promise.all([7, 8, 9].map((id) => next((m) => 'ok' in m && m.id === id)));
    expect(seven).toEqual({
      id: 7,
      ok: true,
      value: [
        { id: pack.manifest.id, name: 'Tiny LLaVA', path: pack.dir, details: expect.objectContaining({ dtype: pack.manifest.dtype }) },
      ],
    });
    expect(eight).toMatchObject({ id: 8, ok: false, error: { code: 'invalid-request' } });
    expect(nine).toMatchObject({ id: 9, ok: false, error: { code: 'unknown-call' } });
  });

  it('streams progress tagged with the request id, then cancels it between steps', async () => {
    engine.post({ id: 20, type: 'engine.selfTest', payload: { runs: 100_000 } });
    const progress = await next((m) => 'event' in m && m.event === 'progress' && m.id === 20);
    expect(progress).toMatchObject({ id: 20, event: 'progress', payload: { total: 100_000 } });
    engine.post({ id: 21, type: 'cancel', payload: { id: 20 } });
    expect(await next((m) => 'ok' in m && m.id === 21)).toEqual({ id: 21, ok: true, value: { found: true } });
    const cancelled = await next((m) => 'ok' in m && m.id === 20);
    expect(cancelled).toEqual({ id: 20, ok: false, error: { code: 'cancelled', message: 'cancelled' } });
    const lastDone = received.filter((m) => 'event' in m && m.id === 20).map((m) => (m as { payload: { done: number } }).payload.done);
    expect(Math.max(...lastDone)).toBeLessThan(100_000);
  });

  it('finishes a short self test with the provider and a mean time', async () => {
    engine.post({ id: 30, type: 'engine.selfTest', payload: { runs: 40 } });
    const done = await next((m) => 'ok' in m && m.id === 30);
    expect(done).toMatchObject({ id: 30, ok: true, value: { provider: 'cpu', runs: 40 } });
    const events = received.filter((m) => 'event' in m && m.id === 30).map((m) => (m as { payload: { done: number } }).payload.done);
    expect(events).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40]);
  });

  it('shuts down on request: answers, then exits 0', async () => {
    const exit = new Promise<string>((resolve) => engine.onExit(resolve));
    engine.post({ id: 40, type: 'shutdown', payload: {} });
    expect(await next((m) => 'ok' in m && m.id === 40)).toEqual({ id: 40, ok: true, value: {} });
    expect(await exit).toBe('exited');
  });
});

describe('engine host', () => {
  const host = new EngineHost({ spawn, restartBackoffMs: [50] });
  const states: EngineStatus[] = [];
  host.onStatus((s) => states.push(s));
  afterAll(() => host.shutdown());

  it('starts, reports busy while a call runs, and returns typed values', async () => {
    await host.start();
    expect(host.status).toMatchObject({ state: 'ready', restarts: 0, info: { activeProvider: 'cpu' } });
    const result = await host.call('engine.selfTest', { runs: 5 });
    expect(result).toMatchObject({ provider: 'cpu', runs: 5 });
    expect(states.map((s) => s.state)).toEqual(['starting', 'ready', 'busy', 'ready']);
  });

  it('cancels through an AbortSignal', async () => {
    const controller = new AbortController();
    const events: unknown[] = [];
    const call = host.call(
      'engine.selfTest',
      { runs: 100_000 },
      {
        signal: controller.signal,
        onEvent: (e) => {
          events.push(e);
          controller.abort();
        },
      },
    );
    await expect(call).rejects.toMatchObject({ code: 'cancelled' });
    expect(events[0]).toMatchObject({ event: 'progress', payload: { total: 100_000 } });
  });

  it('rejects in-flight calls when the engine dies, then restarts it', async () => {
    const firstPid = host.pid!;
    states.length = 0;
    const call = host.call('engine.selfTest', { runs: 100_000 });
    process.kill(firstPid, 'SIGKILL');
    const error = (await call.catch((e) => e)) as CodedError;
    expect(error.code).toBe('engine-crashed');
    expect(error.message).toContain('killed by SIGKILL');
    await host.whenReady();
    expect(host.pid).not.toBe(firstPid);
    expect(states.map((s) => s.state)).toEqual(['busy', 'crashed', 'restarting', 'ready']);
    expect(states[1].reason).toBe('killed by SIGKILL');
    expect(states[2].reason).toBe('killed by SIGKILL');
    expect(host.status).toMatchObject({ state: 'ready', restarts: 1 });
    await expect(host.call('models.list', {})).resolves.toHaveLength(1);
  });

  it('refuses calls while stopped and shuts down cleanly', async () => {
    await host.shutdown();
    expect(host.status).toMatchObject({ state: 'stopped', reason: 'shut down' });
    await expect(host.call('models.list', {})).rejects.toMatchObject({ code: 'engine-unavailable' });
  });
});
