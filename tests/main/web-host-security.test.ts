import { mkdtempSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { WebClient } from '../../src/renderer/client/web-client.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * The web bridge under attack from the same machine: frames that break the protocol, sockets that forge
 * the Origin header but lack the launch's token, one client listening to another's answers, settings and
 * exports that would reach outside the app's own data.
 */

const userData = mkdtempSync(join(tmpdir(), 'tp-web-sec-'));
const rendererDir = join(userData, 'renderer');
mkdirSync(rendererDir);
writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><div id="root"></div>');

let host: WebHost;
let pack: ImportedPack;
const origin = () => new URL(host.url).origin;
const socketUrl = (token?: string) => `${origin().replace('http', 'ws')}/api${token === undefined ? '' : `?token=${token}`}`;
const clients: WebClient[] = [];
/** The trace of the answer the first chat test receives. */
let traceId: string | undefined;
const newClient = () => {
  const client = WebClient.forPage(new URL(host.url));
  clients.push(client);
  return client;
};

beforeAll(async () => {
  (globalThis as { WebSocket?: unknown }).WebSocket ??= class extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { origin: new URL(url).origin.replace('ws', 'http') } });
    }
  };
  pack = await importCheckpoint((await makeSyntheticCheckpoint(join(userData, 'hf-tiny'))).dir, join(userData, 'models'), { name: 'Tiny' });
  host = await startWebHost({ rendererDir, userData, port: 0, engineStdio: 'ignore' });
  await host.engine.whenReady();
}, 60_000);
afterAll(async () => {
  for (const client of clients) client.close();
  await host?.close();
});

/** A raw TCP connection that completes the WebSocket handshake, then writes `frame` as it is. */
function rawSocketSending(frame: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(origin());
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(
        [
          `GET /api?token=${host.token} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          `Origin: ${origin()}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      );
    });
    let upgraded = false;
    socket.on('data', (data) => {
      if (!upgraded && data.toString().startsWith('HTTP/1.1 101')) {
        upgraded = true;
        socket.write(frame);
      }
    });
    socket.on('close', () => (upgraded ? resolve() : reject(new Error('the upgrade was refused'))));
    socket.on('error', () => {});
    setTimeout(() => socket.destroy(), 3_000);
  });
}

describe('web host under hostile input', () => {
  it('survives a frame with an invalid opcode and an over-long message, and keeps serving', async () => {
    // FIN + reserved opcode 3, masked, zero length: 6 bytes.
    await rawSocketSending(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    // A text frame announcing 2^40 bytes, far over the host's message limit.
    const header = Buffer.alloc(14);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(2n ** 40n, 2);
    await rawSocketSending(header);
    expect(await newClient().call('engine.status', {})).toMatchObject({ ok: true, value: { state: 'ready' } });
  });

  it('refuses sockets without the launch token, even with our Origin', async () => {
    const statusOf = (url: string) =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(url, { headers: { origin: origin() } });
        socket.on('open', () => {
          socket.close();
          resolve('open');
        });
        socket.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
        socket.on('error', (e) => resolve(e.message));
      });
    expect(await statusOf(socketUrl())).toBe('403');
    expect(await statusOf(socketUrl('not-the-token'))).toBe('403');
    // One character off: flip the last one to a different character, whatever it was.
    const lastFlipped = host.token.slice(0, -1) + (host.token.endsWith('x') ? 'y' : 'x');
    expect(await statusOf(socketUrl(lastFlipped))).toBe('403');
    expect(await statusOf(socketUrl(host.token))).toBe('open');
    expect(host.url).toBe(`${origin()}/#token=${host.token}`);
    expect(host.token.length).toBeGreaterThanOrEqual(32);
  });

  it("sends each client its own answer's events, not another client's", async () => {
    const alice = newClient();
    const eve = newClient();
    const overheard: unknown[] = [];
    eve.on('chat.answer', (e) => overheard.push(e));
    const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#3a6' } })
      .png()
      .toBuffer();
    const image = await alice.call('images.add', { data: png.toString('base64') });
    const conversation = await alice.call('conversations.create', {});
    if (!image.ok || !conversation.ok) throw new Error('setup failed');
    const finished = new Promise<string>((resolve) =>
      alice.on('chat.answer', (e) => {
        if (e.status === 'streaming') return;
        traceId = e.traceId;
        resolve(e.status);
      }),
    );
    await eve.call('engine.status', {}); // eve's socket is open and listening before the answer starts
    const sent = await alice.call('chat.send', {
      conversationId: conversation.value.id,
      text: 'What colour?',
      images: [image.value.image.id],
    });
    expect(sent.ok).toBe(true);
    expect(await finished).toBe('done');
    await eve.call('engine.status', {}); // anything sent to eve before this answer has arrived
    expect(overheard).toEqual([]);
  });

  it('accepts only installed pack ids as the model setting', async () => {
    const client = newClient();
    const current = await client.call('settings.get', {});
    if (!current.ok) throw new Error('settings.get failed');
    const refused = await client.call('settings.set', { ...current.value, modelId: join(userData, 'hf-tiny') });
    expect(refused).toMatchObject({ ok: false, error: { code: 'invalid-request', message: expect.stringMatching(/No installed model/) } });
    expect(await client.call('settings.set', { ...current.value, modelId: pack.manifest.id })).toMatchObject({
      ok: true,
      value: { modelId: pack.manifest.id },
    });
  });

  it('writes only real PNGs as overlay exports', async () => {
    const client = newClient();
    expect(traceId).toBeDefined();
    const shell = Buffer.from('#!/bin/sh\necho owned\n').toString('base64');
    expect(await client.call('export.overlay', { traceId: traceId!, png: shell })).toMatchObject({
      ok: false,
      error: { code: 'invalid-request', message: expect.stringMatching(/not a PNG/) },
    });
    // PNG magic followed by garbage is no PNG either.
    const fake = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('rest of a script')]);
    expect(await client.call('export.overlay', { traceId: traceId!, png: fake.toString('base64') })).toMatchObject({ ok: false });
    const png = await sharp({ create: { width: 4, height: 4, channels: 4, background: '#f00' } })
      .png()
      .toBuffer();
    // The browser preview hands the checked file back for the browser to download; nothing is written on the host.
    const saved = await client.call('export.overlay', { traceId: traceId!, png: png.toString('base64') });
    expect(saved).toMatchObject({
      ok: true,
      value: { path: null, download: { fileName: expect.stringMatching(/\.png$/), mimeType: 'image/png', data: png.toString('base64') } },
    });
  });

  it('keeps the user data private: folders 0700, files 0600', async () => {
    const modes: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (['renderer', 'hf-tiny', 'models'].includes(entry.name) && dir === userData) continue;
        modes.push(`${path.slice(userData.length)} ${(statSync(path).mode & 0o777).toString(8)}`);
        if (entry.isDirectory()) walk(path);
      }
    };
    expect((statSync(userData).mode & 0o777).toString(8)).toBe('700');
    walk(userData);
    expect(modes.length).toBeGreaterThan(4); // conversations, images, thumbs, settings.json
    for (const line of modes) expect(line).toMatch(/ (700|600)$/);
  });
});
