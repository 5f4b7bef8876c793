import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { createAppCore, type AppCore } from '../../src/main/app-core.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import { modelStoreDir } from '../../src/main/paths.js';
import type { ApiLogEntry, LocalServerStatus } from '../../src/shared/ipc-server.js';

/** Settings' "Local server" switch as main serves it: the app API's zod-checked calls, the real engine, the openai client. */

const root = mkdtempSync(join(tmpdir(), 'tp-local-server-'));
const userData = join(root, 'user');
let core: AppCore;

beforeAll(async () => {
  await importCheckpoint((await makeSyntheticCheckpoint(join(root, 'hf-tiny'))).dir, modelStoreDir(userData), { name: 'tiny' });
  core = createAppCore({ spawn: nodeEngineSpawner({ modelStore: modelStoreDir(userData), stdio: 'ignore' }), userData });
  await core.start();
}, 120_000);
afterAll(async () => {
  await core?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('the app API for the local server', () => {
  it('starts it with a fresh key, serves the openai client, logs each request as an event, and stops it', async () => {
    const events: ApiLogEntry[] = [];
    const off = core.onEvent((event, payload) => event === 'server.log' && events.push(payload as ApiLogEntry));
    const started = await core.call('server.start', { port: 0 });
    expect(started).toMatchObject({ ok: true, value: { running: true, exposed: false, log: [] } });
    const status = (started as { value: LocalServerStatus }).value;
    expect(status.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(status.apiKey).toMatch(/^tp-/);

    const client = new OpenAI({ baseURL: status.baseUrl, apiKey: status.apiKey!, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    expect(completion.usage?.completion_tokens).toBe(3);
    expect(events).toEqual([expect.objectContaining({ path: '/v1/chat/completions', status: 200, model: 'tiny', completionTokens: 3 })]);
    expect(await core.call('server.status', {})).toMatchObject({ ok: true, value: { running: true, log: events } });

    // A restart with other options gets a new key; the old one no longer opens it.
    const again = ((await core.call('server.start', { port: 0, requireKey: true })) as { value: LocalServerStatus }).value;
    expect(again.apiKey).not.toBe(status.apiKey);
    const stale = await new OpenAI({ baseURL: again.baseUrl, apiKey: status.apiKey!, maxRetries: 0 }).models.list().catch((e) => e);
    expect(stale).toMatchObject({ status: 401 });

    expect(await core.call('server.stop', {})).toMatchObject({ ok: true, value: { running: false } });
    await expect(fetch(`${again.baseUrl}/models`)).rejects.toThrow();
    off();
  });

  it('refuses bad options and a busy port with a Result the UI can show', async () => {
    expect(await core.call('server.start', { port: 70_000 })).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const refused = await core.call('server.start', { port });
      expect(refused).toMatchObject({
        ok: false,
        error: { code: 'invalid-request', message: expect.stringContaining(`port ${port} is already in use`) },
      });
      expect(await core.call('server.status', {})).toMatchObject({ ok: true, value: { running: false } });
    } finally {
      blocker.close();
    }
  });
});
