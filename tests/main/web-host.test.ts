import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { WebClient } from '../../src/renderer/client/web-client.js';
import type { EngineStatus } from '../../src/shared/ipc.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * The web bridge end to end in Node: the real host, the real engine child process, and the
 * renderer's real WebClient (Node 20 has no global WebSocket, so the test lends it ws's).
 */

const userData = mkdtempSync(join(tmpdir(), 'tp-web-'));
const rendererDir = join(userData, 'renderer');
mkdirSync(rendererDir);
writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><div id="root"></div>');

let host: WebHost;
let pack: ImportedPack;
let client: WebClient;
const origin = () => new URL(host.url).origin;

beforeAll(async () => {
  (globalThis as { WebSocket?: unknown }).WebSocket ??= class extends WebSocket {
    constructor(url: string) {
      // A browser sends its page's origin; the host refuses sockets without ours.
      super(url, { headers: { origin: new URL(url).origin.replace('ws', 'http') } });
    }
  };
  pack = await importCheckpoint((await makeSyntheticCheckpoint(join(userData, 'hf-tiny'))).dir, join(userData, 'models'), { name: 'Tiny' });
  host = await startWebHost({ rendererDir, userData, port: 0, engineStdio: 'ignore', restartBackoffMs: [50] });
  client = WebClient.forPage(new URL(host.url));
  await host.engine.whenReady();
}, 60_000);
let hostClosed = false;
afterAll(async () => {
  client?.close();
  if (!hostClosed) await host?.close();
});

describe('web host', () => {
  it('serves the renderer with a CSP that allows only its own socket', async () => {
    const response = await fetch(host.url);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('<div id="root">');
    expect(response.headers.get('content-security-policy')).toContain(`connect-src 'self' ${origin().replace('http', 'ws')}`);
    expect((await fetch(`${origin()}/../../etc/passwd`)).status).toBe(404);
    expect((await fetch(host.url, { method: 'POST' })).status).toBe(405);
  });

  it('answers app calls through the WebClient with Results', async () => {
    const status = await client.call('engine.status', {});
    expect(status).toMatchObject({ ok: true, value: { state: 'ready', info: { activeProvider: 'cpu' } } });
    expect(await client.call('models.list', {})).toEqual({ ok: true, value: [{ id: pack.manifest.id, name: 'Tiny', path: pack.dir }] });
    expect(await client.call('engine.selfTest', { runs: 0 } as never)).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    expect(await client.call('fs.read' as never, {} as never)).toMatchObject({ ok: false, error: { code: 'unknown-call' } });
  });

  it('carries large requests (image bytes) and answers bad ones with a Result', async () => {
    const notAnImage = Buffer.alloc(3 * 1024 * 1024, 7).toString('base64');
    const result = await client.call('images.add', { data: notAnImage });
    // Refused by the image store, not by the transport (which would read as a lost connection).
    expect(result).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
  });

  it('pushes status changes: a killed engine shows crashed, then ready again', async () => {
    const seen: EngineStatus[] = [];
    const unsubscribe = client.on('engine.status', (s) => seen.push(s));
    const pid = host.engine.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => seen.some((s) => s.state === 'ready'));
    unsubscribe();
    expect(seen.map((s) => s.state)).toEqual(['crashed', 'restarting', 'ready']);
    expect(seen[0].reason).toBe('killed by SIGKILL');
    expect(seen[2].info!.pid).not.toBe(pid);
  });

  it('refuses sockets from other origins and requests under other host names', async () => {
    const foreign = new WebSocket(`${origin().replace('http', 'ws')}/api`, { headers: { origin: 'https://evil.example' } });
    const refused = await new Promise<string>((resolve) => {
      foreign.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      foreign.on('error', (e) => resolve(e.message));
    });
    expect(refused).toMatch(/403/);
    // fetch() may not set Host, so a raw request plays the DNS-rebinding page.
    const rebinding = await new Promise<number>((resolve, reject) => {
      get(host.url, { headers: { host: 'attacker.example' } }, (res) => resolve(res.statusCode!)).on('error', reject);
    });
    expect(rebinding).toBe(421);
    const garbled = await new Promise<number>((resolve, reject) => {
      get({ host: '127.0.0.1', port: new URL(host.url).port, path: 'http://[' }, (res) => resolve(res.statusCode!)).on('error', reject);
    });
    expect(garbled).toBe(400);
    expect((await fetch(host.url)).status).toBe(200);
  });
});

describe('web client', () => {
  it('reports the engine stopped when the host goes away, then reconnects when it is back', async () => {
    const seen: EngineStatus[] = [];
    client.on('engine.status', (s) => seen.push(s));
    const port = Number(new URL(host.url).port);
    hostClosed = true;
    await host.close();
    await waitFor(() => seen.some((s) => s.state === 'stopped' && s.reason === 'lost the connection to the web host'));
    expect(await client.call('engine.status', {})).toMatchObject({ ok: false, error: { code: 'engine-unavailable' } });

    // The same launch's token: a host started anew would print a new one, which an open page does not know.
    host = await startWebHost({ rendererDir, userData, port, engineStdio: 'ignore', token: host.token });
    hostClosed = false;
    await waitFor(() => seen.at(-1)?.state === 'ready');
    expect(seen.at(-1)).toMatchObject({ state: 'ready', restarts: 0, info: { pid: host.engine.pid } });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
