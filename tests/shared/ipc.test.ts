import { describe, expect, it } from 'vitest';
import {
  EngineInfo,
  EngineOutMessage,
  EngineRequestMessage,
  EngineStatus,
  WsServerMessage,
  appCallNames,
  appCalls,
  appEventNames,
  engineCalls,
  parseRequest,
} from '../../src/shared/ipc.js';
import { CodedError, errorFrom, resultOf } from '../../src/shared/result.js';
import { z } from 'zod';

const info = {
  pid: 42,
  versions: { node: '20.20.2', onnxruntime: '1.30.0', protocol: 1 },
  providers: [
    { name: 'cpu', bundled: true, loads: true },
    { name: 'cuda', bundled: false, loads: false, error: 'Failed to load shared library' },
  ],
  activeProvider: 'cpu',
};

describe('app API table', () => {
  it('names every call group.name, so the preload can expose api.group.name', () => {
    expect(appCallNames.length).toBeGreaterThan(0);
    for (const name of appCallNames) expect(name).toMatch(/^[a-z][A-Za-z]*\.[a-z][A-Za-z]*$/);
    expect(appEventNames).toContain('engine.status');
  });

  it('accepts the documented requests and rejects extra or wrong fields', () => {
    expect(parseRequest(appCalls, 'engine.status', {})).toEqual({ name: 'engine.status', request: {} });
    expect(parseRequest(appCalls, 'engine.selfTest', { runs: 3 })).toEqual({ name: 'engine.selfTest', request: { runs: 3 } });
    expect(() => parseRequest(appCalls, 'engine.status', { sneaky: true })).toThrow(z.ZodError);
    expect(() => parseRequest(appCalls, 'engine.selfTest', { runs: 0 })).toThrow(z.ZodError);
    expect(() => parseRequest(appCalls, 'engine.selfTest', { runs: 1.5 })).toThrow(z.ZodError);
    expect(() => parseRequest(appCalls, 'engine.status', undefined)).toThrow(z.ZodError);
  });

  it('refuses names that are not own entries of the table', () => {
    for (const name of ['fs.readFile', 'toString', '__proto__', 'constructor']) {
      const error = (() => {
        try {
          parseRequest(appCalls, name, {});
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe('unknown-call');
    }
  });
});

describe('engine status and handshake', () => {
  it('accepts each state with its details', () => {
    expect(EngineStatus.parse({ state: 'ready', restarts: 0, info })).toMatchObject({ state: 'ready' });
    expect(EngineStatus.parse({ state: 'crashed', reason: 'killed by SIGKILL', restarts: 2 })).toMatchObject({
      reason: 'killed by SIGKILL',
    });
    expect(EngineStatus.safeParse({ state: 'exploded', restarts: 0 }).success).toBe(false);
    expect(EngineStatus.safeParse({ state: 'ready', restarts: -1 }).success).toBe(false);
  });

  it('rejects a handshake without versions or with a malformed provider', () => {
    const { versions: _, ...noVersions } = info;
    expect(EngineOutMessage.safeParse({ event: 'ready', payload: info }).success).toBe(true);
    expect(EngineInfo.safeParse(noVersions).success).toBe(false);
    expect(EngineInfo.safeParse({ ...info, providers: [{ name: 'cpu' }] }).success).toBe(false);
  });
});

describe('engine envelopes', () => {
  it('tells requests, responses and events apart', () => {
    expect(EngineRequestMessage.safeParse({ id: 1, type: 'models.list', payload: {} }).success).toBe(true);
    expect(EngineRequestMessage.safeParse({ id: -1, type: 'models.list', payload: {} }).success).toBe(false);
    expect(EngineRequestMessage.safeParse({ type: 'models.list', payload: {} }).success).toBe(false);
    expect(EngineOutMessage.parse({ id: 3, ok: true, value: [] })).toEqual({ id: 3, ok: true, value: [] });
    expect(EngineOutMessage.parse({ id: 3, ok: false, error: { code: 'cancelled', message: 'cancelled' } })).toMatchObject({ ok: false });
    expect(EngineOutMessage.safeParse({ id: 3, ok: false, error: { code: 'made-up', message: 'x' } }).success).toBe(false);
    expect(EngineOutMessage.parse({ id: 3, event: 'progress', payload: { done: 1, total: 2 } })).toMatchObject({ event: 'progress' });
  });

  it('has cancel and shutdown as calls with their own schemas', () => {
    expect(engineCalls.cancel.request.safeParse({ id: 5 }).success).toBe(true);
    expect(engineCalls.cancel.request.safeParse({}).success).toBe(false);
    expect(engineCalls.shutdown.request.safeParse({}).success).toBe(true);
  });

  it('validates web socket server messages', () => {
    expect(WsServerMessage.safeParse({ id: 1, result: { ok: true, value: 1 } }).success).toBe(true);
    expect(WsServerMessage.safeParse({ id: 1, result: { ok: false } }).success).toBe(false);
    expect(WsServerMessage.safeParse({ event: 'engine.status', payload: {} }).success).toBe(true);
  });
});

describe('results', () => {
  it('keeps the code of a coded error and maps schema failures to invalid-request', () => {
    expect(errorFrom(new CodedError('timeout', 'too slow'))).toEqual({ ok: false, error: { code: 'timeout', message: 'too slow' } });
    expect(errorFrom(new Error('boom'))).toEqual({ ok: false, error: { code: 'internal', message: 'boom' } });
    const zodError = z.number().safeParse('x').error;
    expect(errorFrom(zodError).error.code).toBe('invalid-request');
    expect(resultOf(z.number()).safeParse({ ok: true, value: 'x' }).success).toBe(false);
  });
});
