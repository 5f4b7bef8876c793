import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { needsVerification } from '../../src/engine/pack/verify.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { WebClient } from '../../src/renderer/client/web-client.js';
import { appCalls, type AppEventPayload } from '../../src/shared/ipc.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';

/**
 * Models' Verify through the whole app path (web bridge, contract, main's handler, engine host, engine
 * process): an intact pack verifies, one with a zero-filled layer file names that file, and a pack that
 * is gone or unreadable gets a message that says so instead of a raw error.
 */

const userData = mkdtempSync(join(tmpdir(), 'tp-verify-app-'));
const store = modelStoreDir(userData);
const rendererDir = join(userData, 'renderer');
mkdirSync(rendererDir);
writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><div id="root"></div>');

let host: WebHost;
let intact: ImportedPack;
let corrupt: ImportedPack;
const clients: WebClient[] = [];
const newClient = () => {
  const client = WebClient.forPage(new URL(host.url));
  clients.push(client);
  return client;
};

/** The pack's weight files as the disk has them (the graphs' external data; the .onnx graphs themselves are not hashed). */
const weightFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.bin'));

beforeAll(async () => {
  (globalThis as { WebSocket?: unknown }).WebSocket ??= class extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { origin: new URL(url).origin.replace('ws', 'http') } });
    }
  };
  // Different seeds: packs are named by their content, and these two must be two packs.
  intact = await importCheckpoint((await makeSyntheticCheckpoint(join(userData, 'hf-a'))).dir, store, { name: 'Intact' });
  corrupt = await importCheckpoint((await makeSyntheticCheckpoint(join(userData, 'hf-b'), { seed: 2 })).dir, store, { name: 'Corrupt' });
  const layer = join(corrupt.dir, 'layer_01.bin');
  writeFileSync(layer, Buffer.alloc(statSync(layer).size));
  host = await startWebHost({ rendererDir, userData, port: 0, engineStdio: 'ignore' });
  await host.engine.whenReady();
}, 90_000);
afterAll(async () => {
  for (const client of clients) client.close();
  await host?.close();
});

describe('models.verify', () => {
  it('verifies an intact pack with progress, to its caller only, while the engine keeps answering', async () => {
    const alice = newClient();
    const eve = newClient();
    const progress: AppEventPayload<'models.verifyProgress'>[] = [];
    const overheard: unknown[] = [];
    alice.on('models.verifyProgress', (p) => progress.push(p));
    eve.on('models.verifyProgress', (p) => overheard.push(p));
    await eve.call('engine.status', {}); // eve listens before the check starts
    const before = Date.now();
    const [verified, listed] = await Promise.all([alice.call('models.verify', { id: intact.manifest.id }), eve.call('models.list', {})]);

    expect(listed.ok).toBe(true);
    if (!verified.ok) throw new Error(verified.error.message);
    const result = appCalls['models.verify'].response.parse(verified.value);
    const files = weightFiles(intact.dir);
    expect(result).toMatchObject({ ok: true, damaged: [], files: files.length });
    expect(result.bytes).toBe(files.reduce((sum, f) => sum + statSync(join(intact.dir, f)).size, 0));
    expect(result.checkedAt).toBeGreaterThanOrEqual(before);
    expect(result.checkedAt).toBeLessThanOrEqual(Date.now());

    expect(progress.every((p) => p.id === intact.manifest.id)).toBe(true);
    expect(progress.some((p) => p.progress.message === 'verifying layer_01.bin')).toBe(true);
    const done = progress.map((p) => p.progress.done);
    expect(done.every((d, i) => i === 0 || d >= done[i - 1])).toBe(true);
    expect(progress.at(-1)?.progress).toMatchObject({ done: result.bytes, total: result.bytes });
    await eve.call('engine.status', {}); // anything sent to eve before this point has arrived
    expect(overheard).toEqual([]);
  });

  it('names the zero-filled weight file, and the next load checks the pack again', async () => {
    const verified = await newClient().call('models.verify', { id: corrupt.manifest.id });
    if (!verified.ok) throw new Error(verified.error.message);
    expect(appCalls['models.verify'].response.parse(verified.value)).toMatchObject({
      ok: false,
      damaged: [{ file: 'layer_01.bin', reason: 'changed' }],
      files: weightFiles(corrupt.dir).length,
    });
    expect(await needsVerification(corrupt.dir)).toBe(true);
  });

  it('says clearly when the pack is gone or unreadable, and the engine stays up', async () => {
    const client = newClient();
    expect(await client.call('models.verify', { id: 'no-such-pack' })).toEqual({
      ok: false,
      error: { code: 'not-found', message: 'no installed model has the id "no-such-pack"; choose one of the models listed in Models' },
    });
    mkdirSync(join(store, 'broken'));
    writeFileSync(join(store, 'broken', 'manifest.json'), '{"id": "broken", "name": ');
    const unreadable = await client.call('models.verify', { id: 'broken' });
    expect(unreadable).toMatchObject({ ok: false, error: { code: 'internal' } });
    expect(!unreadable.ok && unreadable.error.message).toBe(
      `The model pack in ${join(store, 'broken')} cannot be read (its manifest.json is missing or damaged): delete that folder and import the model again.`,
    );
    expect(await client.call('models.verify', { id: '' })).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    expect(await client.call('engine.status', {})).toMatchObject({ ok: true, value: { state: 'ready', restarts: 0 } });
  });
});
