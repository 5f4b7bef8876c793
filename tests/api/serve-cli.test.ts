// `npm run serve` as a user runs it (a real process with its own engine), driven with curl.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';

const root = mkdtempSync(join(tmpdir(), 'tp-serve-cli-'));
const store = join(root, 'store');
const running: ChildProcess[] = [];

beforeAll(async () => {
  await importCheckpoint((await makeSyntheticCheckpoint(join(root, 'hf-tiny'))).dir, store, { name: 'tiny' });
}, 120_000);
afterAll(() => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

interface Serve {
  child: ChildProcess;
  baseUrl: string;
  key: string;
  output(): { stdout: string; stderr: string };
  /** Sends SIGINT; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `npm run serve -- ...args` (its script, run the same way) and waits until it prints its URL and key. */
async function serve(...args: string[]): Promise<Serve> {
  const child = spawn(process.execPath, [
    '--import',
    'tsx',
    'src/api/serve.ts',
    '--port',
    '0',
    '--store',
    store,
    '--user-data',
    join(root, 'user'),
    ...args,
  ]);
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const start = Date.now();
  while (!/API key +\S+/.test(stdout)) {
    if (child.exitCode !== null || Date.now() - start > 60_000) throw new Error(`serve did not start:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    baseUrl: /base URL +(\S+)/.exec(stdout)![1],
    key: /API key +(\S+)/.exec(stdout)![1],
    output: () => ({ stdout, stderr }),
    stop: () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

async function curl(...args: string[]): Promise<string> {
  return (await promisify(execFile)('curl', ['--silent', '--show-error', ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

describe('npm run serve', () => {
  it('serves the installed model to curl: models, an image question, the same answer streamed, 401 without the key', async () => {
    const server = await serve('--api-key', 'cli-test-key');
    expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(server.key).toBe('cli-test-key');
    expect(server.output().stdout).toMatch(/models +tiny/);
    const auth = ['-H', 'Authorization: Bearer cli-test-key'];

    const models = JSON.parse(await curl(`${server.baseUrl}/models`, ...auth));
    expect(models.data.map((m: { id: string }) => m.id)).toEqual(['tiny']);

    const png = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer();
    const request = {
      model: 'tiny',
      max_tokens: 8,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What colour is this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
          ],
        },
      ],
      transprune: { method: 'transprune-high' },
    };
    const body = join(root, 'request.json');
    writeFileSync(body, JSON.stringify(request));
    const post = (file: string) =>
      curl(`${server.baseUrl}/chat/completions`, ...auth, '-H', 'Content-Type: application/json', '-d', `@${file}`);
    const completion = JSON.parse(await post(body));
    expect(completion).toMatchObject({ object: 'chat.completion', model: 'tiny', choices: [{ finish_reason: 'length' }] });
    expect(completion.usage.completion_tokens).toBe(8);
    expect(completion.x_transprune).toMatchObject({ method: 'transprune-high', visual_tokens: { total: 16 } });

    const streamBody = join(root, 'stream.json');
    writeFileSync(streamBody, JSON.stringify({ ...request, stream: true }));
    const events = (await post(streamBody)).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(completion.choices[0].message.content);

    expect(await curl('-o', '/dev/null', '-w', '%{http_code}', `${server.baseUrl}/models`)).toBe('401');
    expect(await server.stop()).toBe(0);
    expect(server.output().stdout).toMatch(/POST \/v1\/chat\/completions 200 tiny stream \d+\+8 tokens/);
    expect(server.output().stdout).toMatch(/GET \/v1\/models 401 error/);
  });

  it('says loudly when --host makes it reachable from the network, and --no-auth drops the key', async () => {
    const server = await serve('--host', '127.0.0.2', '--no-auth');
    expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.2:\d+\/v1$/);
    expect(server.output().stderr).toContain('REACHABLE FROM THE NETWORK');
    expect(server.output().stderr).toContain('NO API KEY');
    expect(JSON.parse(await curl(`${server.baseUrl}/models`)).data).toHaveLength(1);
    expect(await server.stop()).toBe(0);
  });

  it('refuses contradictory options before starting anything', async () => {
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/api/serve.ts', '--api-key', 'abcdefgh', '--no-auth']);
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('--api-key and --no-auth exclude each other') });
  });
});
