import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METHOD_EXAMPLES } from '../../src/api/completions.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import type { ApiLogEntry } from '../../src/shared/ipc-server.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint, type ImportedPack } from '../../src/engine/pack/import.js';
import { createAppCore, type AppCore } from '../../src/main/app-core.js';
import { nodeEngineSpawner } from '../../src/main/engine-process-node.js';
import { modelStoreDir } from '../../src/main/paths.js';
import type { Answer } from '../../src/shared/ipc-features.js';
import { parseMethod, planStages } from '../../src/shared/pruning.js';
import { AppSettings } from '../../src/shared/settings.js';
import type { Trace } from '../../src/shared/trace.js';

/**
 * The local OpenAI-compatible server end to end: the official `openai` client against the real server,
 * over the real engine process with a tiny random-weight checkpoint. The answers are checked against the
 * engine's own `chat.ask` for the same question, and the pruning numbers against the shared schedule math.
 */

const KEY = 'test-key-123456';
const root = mkdtempSync(join(tmpdir(), 'tp-api-'));
const userData = join(root, 'user');
let pack: ImportedPack;
let core: AppCore;
let server: ApiServer;
let client: OpenAI;
const log: ApiLogEntry[] = [];

/** What `x_transprune` carries (the client's types do not know it). */
interface XTransPrune {
  method: string;
  visual_tokens: { total: number; kept: number; stages: { stage: string; after_layer?: number; tokens: number }[] };
  flops: { paper_macs: number; paper_macs_unpruned: number; full_flops: number; full_flops_unpruned: number };
  timings_ms: { time_to_first_token: number; preprocess: number; vision: number; prefill: number; decode: number };
  decode_tokens_per_sec: number;
  execution_provider: string;
  trace?: Trace;
}
const xOf = (response: object) => (response as { x_transprune: XTransPrune }).x_transprune;
/** A request with the `transprune` extension, which the client passes through as it is. */
const withTransPrune = (params: object, transprune: object) =>
  ({ ...params, transprune }) as unknown as ChatCompletionCreateParamsNonStreaming;

let png: Buffer;
let pngFile: string;
const dataUrl = () => `data:image/png;base64,${png.toString('base64')}`;
const imageMessage = (text: string, url = dataUrl()) => ({
  role: 'user' as const,
  content: [
    { type: 'text' as const, text },
    { type: 'image_url' as const, image_url: { url } },
  ],
});

beforeAll(async () => {
  pack = await importCheckpoint((await makeSyntheticCheckpoint(join(root, 'hf-tiny'))).dir, modelStoreDir(userData), { name: 'tiny' });
  core = createAppCore({
    spawn: nodeEngineSpawner({ modelStore: modelStoreDir(userData), stdio: 'ignore' }),
    userData,
    restartBackoffMs: [50],
  });
  await core.start();
  server = await startApiServer({ backend: core, port: 0, apiKey: KEY, limits: { queue: 4 } });
  server.onLog((entry) => log.push(entry));
  client = new OpenAI({ baseURL: server.baseUrl, apiKey: KEY, maxRetries: 0 });
  const pixels = Buffer.alloc(40 * 30 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 251;
  png = await sharp(pixels, { raw: { width: 40, height: 30, channels: 3 } })
    .png()
    .toBuffer();
  pngFile = join(root, 'picture.png');
  writeFileSync(pngFile, png);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await core?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** The engine's own answer to a question, through the same host the server uses: the reference for the server's. */
function engineAnswer(
  text: string,
  options: {
    image?: string;
    method?: string;
    maxTokens: number;
    sampling?: { temperature: number; topP: number; seed: number };
    stop?: string[];
  },
): Promise<Answer> {
  return core.engine.call('chat.ask', {
    model: pack.manifest.id,
    image: options.image,
    turns: [{ role: 'user', text, ...(options.image && { image: true }) }],
    method: parseMethod(options.method ?? 'transprune-high'),
    sampling: options.sampling ?? { temperature: 0, topP: 1, seed: 0 },
    maxTokens: options.maxTokens,
    stop: options.stop,
    ep: 'auto',
  });
}

async function waitFor<T>(find: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw request, for what the client would not send (other host names, origins, broken JSON). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(server.baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('GET /v1/models', () => {
  it('lists the installed model with what TransPrune needs to know about it', async () => {
    const models = await client.models.list();
    expect(models.data).toEqual([
      expect.objectContaining({
        id: 'tiny',
        object: 'model',
        owned_by: 'local',
        x_transprune: expect.objectContaining({
          pack_id: pack.manifest.id,
          visual_tokens: pack.manifest.numVisualTokens,
          layers: 4,
          methods: METHOD_EXAMPLES,
          default_method: 'transprune-high',
        }),
      }),
    ]);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
    // Every method the server advertises is one the app's parser takes.
    for (const method of METHOD_EXAMPLES) expect(() => parseMethod(method)).not.toThrow();
  });
});

describe('POST /v1/chat/completions', () => {
  it('answers about an image (data: URL) exactly as the engine does, with usage and x_transprune', async () => {
    const question = 'What is in the image?';
    const completion = (await client.chat.completions.create(
      withTransPrune({ model: 'tiny', messages: [imageMessage(question)], max_tokens: 12 }, { method: 'transprune-high', trace: true }),
    )) as ChatCompletion;
    const reference = await engineAnswer(question, { image: pngFile, maxTokens: 12 });

    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('tiny');
    expect(completion.choices[0].message).toMatchObject({ role: 'assistant', content: reference.text });
    expect(completion.choices[0].finish_reason).toBe(reference.finishReason === 'length' ? 'length' : 'stop');
    const { prompt } = reference.trace;
    // Prompt tokens as the model sees them: the text's tokens plus the image's visual tokens.
    expect(completion.usage).toEqual({
      prompt_tokens: prompt.textTokens + prompt.visualTokens,
      completion_tokens: reference.stats.generatedTokens,
      total_tokens: prompt.textTokens + prompt.visualTokens + reference.stats.generatedTokens,
    });
    expect(prompt.visualTokens).toBe(16);

    const x = xOf(completion);
    const stages = planStages(parseMethod('transprune-high').llm, 4, 16);
    expect(x.method).toBe('transprune-high');
    expect(x.visual_tokens).toEqual({
      total: 16,
      kept: stages.at(-1)!.keep,
      stages: [{ stage: 'vision', tokens: 16 }, ...stages.map((s) => ({ stage: 'layer', after_layer: s.afterLayer, tokens: s.keep }))],
    });
    const flops = reference.trace.totals.flops;
    expect(x.flops).toEqual({
      paper_macs: flops.paper,
      paper_macs_unpruned: flops.paperUnpruned,
      full_flops: flops.full,
      full_flops_unpruned: flops.fullUnpruned,
    });
    expect(x.flops.paper_macs).toBeLessThan(x.flops.paper_macs_unpruned);
    expect(x.timings_ms.prefill).toBeGreaterThan(0);
    expect(x.execution_provider).toBe('cpu');
    expect(x.trace?.layers.map((l) => l.kept?.length)).toEqual(reference.trace.layers.map((l) => l.kept?.length));
    expect(x.trace?.totals.answer).toBe(reference.text);
  });

  it('streams the same answer as server-sent events, with usage and x_transprune at the end', async () => {
    const question = 'Describe the picture.';
    const params = { model: 'tiny', messages: [imageMessage(question)], max_tokens: 10 };
    const whole = (await client.chat.completions.create(params)) as ChatCompletion;
    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0].message.content);
    const finish = chunks.find((c) => c.choices[0]?.finish_reason)!;
    expect(finish.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(xOf(finish).visual_tokens).toEqual(xOf(whole).visual_tokens);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage });
  });

  it('answers text only (no vision tower, no visual tokens), streaming and not, with the method the request names', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Say something.' },
    ];
    const completion = (await client.chat.completions.create(
      withTransPrune({ model: 'tiny', messages, max_tokens: 8 }, { method: 'none' }),
    )) as ChatCompletion;
    expect(xOf(completion)).toMatchObject({ method: 'none', visual_tokens: { total: 0, kept: 0 }, flops: { paper_macs: 0 } });
    const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(completion.choices[0].message.content);
    expect(text.length).toBeGreaterThan(0);
  });

  it('passes sampling, the token limit and stop strings on to the engine', async () => {
    const question = 'Write something random.';
    const messages = [{ role: 'user' as const, content: question }];
    const sampling = { temperature: 0.9, topP: 0.8, seed: 7 };
    const sampled = await client.chat.completions.create({
      model: 'tiny',
      messages,
      temperature: 0.9,
      top_p: 0.8,
      seed: 7,
      max_completion_tokens: 12,
    });
    const reference = await engineAnswer(question, { maxTokens: 12, sampling });
    expect(sampled.choices[0].message.content).toBe(reference.text);
    expect(sampled.usage?.completion_tokens).toBe(12);
    const greedy = await engineAnswer(question, { maxTokens: 12 });
    expect(greedy.text).not.toBe(reference.text);

    // A stop string cut from the middle of the answer: the answer ends before it, as the engine's own does.
    const stop = greedy.text.slice(4, 7);
    const stopped = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, stop });
    const stoppedReference = await engineAnswer(question, { maxTokens: 12, stop: [stop] });
    expect(stopped.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: stoppedReference.text } });
    expect(greedy.text.startsWith(`${stoppedReference.text}${stop}`)).toBe(true);
  });

  it("takes the method from the app's settings when the request names none", async () => {
    const ask = () => client.chat.completions.create({ model: 'tiny', messages: [imageMessage('Which colour?')], max_tokens: 2 });
    expect(xOf(await ask()).method).toBe('transprune-high');
    const settings = AppSettings.parse(await core.handlers['settings.get']({}));
    await core.handlers['settings.set']({ ...settings, method: 'fastv:k=2,r=0.5' });
    try {
      const x = xOf(await ask());
      expect(x.method).toBe('fastv:k=2,r=0.5');
      expect(x.visual_tokens.kept).toBe(8);
    } finally {
      await core.handlers['settings.set'](settings);
    }
  });
});

describe('refusals, in OpenAI error shape', () => {
  const ask = (params: object, apiKey = KEY) =>
    new OpenAI({ baseURL: server.baseUrl, apiKey, maxRetries: 0 }).chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 2,
      ...params,
    } as ChatCompletionCreateParamsNonStreaming);
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => expect.unreachable('answered'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );

  it('401 for a wrong or missing key', async () => {
    const wrong = await refusal(ask({}, 'not-the-key'));
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' });
    expect((await raw('GET', '/v1/models', { host: new URL(server.baseUrl).host })).status).toBe(401);
  });

  it('404 for a model that is not installed', async () => {
    const error = await refusal(ask({ model: 'llava-1.5-7b' }));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    expect(error.message).toContain('tiny');
    // A folder path is not an installed model either.
    expect((await refusal(ask({ model: pack.dir }))).status).toBe(404);
  });

  it('400 for a remote image URL, a file:// URL (off by default), two images and a pixel bomb', async () => {
    const remote = await refusal(ask({ messages: [imageMessage('Hi', 'https://example.com/cat.png')] }));
    expect(remote).toBeInstanceOf(OpenAI.BadRequestError);
    expect(remote).toMatchObject({ status: 400, code: 'invalid_image_url' });
    expect(remote.message).toMatch(/never fetches from the network/);
    expect(await refusal(ask({ messages: [imageMessage('Hi', pathToFileURL(pngFile).href)] }))).toMatchObject({ status: 400 });
    const two = { role: 'user', content: [...imageMessage('a').content, ...imageMessage('b').content] };
    expect(await refusal(ask({ messages: [two] }))).toMatchObject({ status: 400, code: 'too_many_images' });
    // 8000 x 7000 of one colour: a small file, 56 MP past the app's 50 MP limit.
    const huge = await sharp({ create: { width: 8000, height: 7000, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const bomb = await refusal(ask({ messages: [imageMessage('Hi', `data:image/png;base64,${huge.toString('base64')}`)] }));
    expect(bomb).toMatchObject({ status: 400, code: 'invalid_image' });
    expect(bomb.message).toMatch(/MP/);
  });

  it('400 for bad fields: messages past the bound, an unknown method, tools, bad JSON', async () => {
    const many = Array.from({ length: 65 }, () => ({ role: 'user', content: 'x' }));
    expect(await refusal(ask({ messages: many }))).toMatchObject({ status: 400, param: 'messages' });
    expect(await refusal(ask({ transprune: { method: 'transprune-ultra' } }))).toMatchObject({ status: 400, code: 'invalid_method' });
    expect(await refusal(ask({ tools: [{ type: 'function', function: { name: 'f' } }] }))).toMatchObject({ status: 400 });
    expect(await refusal(ask({ temperature: 5 }))).toMatchObject({ status: 400, param: 'temperature' });
    const host = new URL(server.baseUrl).host;
    const broken = await raw(
      'POST',
      '/v1/chat/completions',
      { host, authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      '{"model":',
    );
    expect(broken.status).toBe(400);
    expect(JSON.parse(broken.body)).toEqual({
      error: { message: 'The request body is not valid JSON.', type: 'invalid_request_error', param: null, code: 'invalid_json' },
    });
  });

  it('413 for a 30 MB body, before reading it', async () => {
    const error = await refusal(ask({ messages: [{ role: 'user', content: 'x'.repeat(30 * 1024 * 1024) }] }));
    expect(error).toMatchObject({ status: 413, code: 'request_too_large' });
    // The connection that carried it is not needed for the next request: the server still answers.
    expect((await client.models.list()).data).toHaveLength(1);
  });

  it('refuses web pages (no CORS headers), other host names (DNS rebinding), and unknown URLs', async () => {
    const host = new URL(server.baseUrl).host;
    const page = await raw('GET', '/v1/models', { host, origin: 'https://evil.example', authorization: `Bearer ${KEY}` });
    expect(page.status).toBe(403);
    expect(page.headers['access-control-allow-origin']).toBeUndefined();
    const rebinding = await raw('GET', '/v1/models', { host: 'attacker.example', authorization: `Bearer ${KEY}` });
    expect(rebinding.status).toBe(421);
    const unknown = await raw('GET', '/v1/embeddings', { host, authorization: `Bearer ${KEY}` });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe('unknown_url');
    const nothing = await raw('POST', '/v1/chat/completions', { host, authorization: `Bearer ${KEY}`, 'content-type': 'text/plain' }, '{}');
    expect(nothing.status).toBe(415);
  });
});

describe('the engine under load', () => {
  it('a client that disconnects mid-stream cancels its answer between decode steps; the engine is free at once', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a long story.' }];
    // Uncancelled, this question runs to its limit: a disconnect has plenty left to stop.
    const full = (await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2000 })) as ChatCompletion;
    expect(full.usage?.completion_tokens).toBe(2000);

    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'tiny', messages, max_tokens: 2000, stream: true },
      { signal: controller.signal },
    );
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) received++;
      if (received === 20) {
        controller.abort();
        break;
      }
    }
    const entry = await waitFor(() => log.find((e) => e.stream && e.outcome === 'cancelled'));
    // The engine answered the cancel (the call settled), so it is idle again, having decoded only a few tokens past the disconnect.
    expect(entry).toMatchObject({ outcome: 'cancelled', stream: true });
    expect(core.engine.status.state).toBe('ready');
    expect(entry.textEvents! - received).toBeLessThan(50);
    expect(entry.textEvents).toBeLessThan(2000);
    // The next request is answered right away.
    const next = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 3 });
    expect(next.usage?.completion_tokens).toBe(3);
  });

  it('20 concurrent requests: each completes with its own answer, or gets 429; nothing is lost or mixed up', async () => {
    const questions = Array.from({ length: 20 }, (_, i) => `Question ${i}: what comes after ${i * 7}?`);
    const params = (i: number) => ({ model: 'tiny', messages: [{ role: 'user' as const, content: questions[i] }], max_tokens: 6 });
    const references: string[] = [];
    for (const [i] of questions.entries())
      references.push(((await client.chat.completions.create(params(i))) as ChatCompletion).choices[0].message.content!);
    expect(new Set(references).size).toBeGreaterThan(10);

    const results = await Promise.allSettled(
      questions.map(async (_, i) => {
        if (i % 2 === 0) return ((await client.chat.completions.create(params(i))) as ChatCompletion).choices[0].message.content;
        let text = '';
        for await (const chunk of await client.chat.completions.create({ ...params(i), stream: true }))
          text += chunk.choices[0]?.delta.content ?? '';
        return text;
      }),
    );
    const answered = results.flatMap((r, i) => (r.status === 'fulfilled' ? [[i, r.value] as const] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as InstanceType<typeof OpenAI.APIError>] : []));
    for (const [i, text] of answered) expect(text).toBe(references[i]);
    for (const error of refused) expect(error).toMatchObject({ status: 429, code: 'queue_full', type: 'rate_limit_error' });
    expect(answered.length + refused.length).toBe(20);
    // One runs and four wait: at least five are answered, and the rest of a burst of twenty cannot all fit.
    expect(answered.length).toBeGreaterThanOrEqual(5);
    expect(refused.length).toBeGreaterThan(0);
  });

  it('500 when the engine dies under a request; the host restarts it and the next request is answered', async () => {
    const pid = core.engine.pid!;
    const answer = client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Go on.' }], max_tokens: 2000 });
    await waitFor(() => (core.engine.status.state === 'busy' ? true : undefined));
    process.kill(pid, 'SIGKILL');
    const error = await answer.then(
      () => expect.unreachable('answered'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).toMatchObject({ status: 500, code: 'engine_crashed', type: 'server_error' });
    expect(error.message).not.toMatch(/\n\s+at /); // never a stack trace
    const next = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Again.' }], max_tokens: 3 });
    expect(next.usage?.completion_tokens).toBe(3);
    expect(core.engine.pid).not.toBe(pid);
  });
});

describe('options', () => {
  it('--cors lets one origin in with CORS headers; --allow-file-urls takes file:// images; --model must be installed', async () => {
    const origin = 'http://localhost:5173';
    const other = await startApiServer({
      backend: core,
      port: 0,
      apiKey: null,
      cors: origin,
      allowFileUrls: true,
      model: 'tiny',
    });
    try {
      const url = new URL(other.baseUrl);
      const get = (headers: Record<string, string>, method = 'GET') =>
        new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) =>
          httpRequest(
            { host: url.hostname, port: url.port, path: '/v1/models', method, headers: { host: url.host, ...headers } },
            (res) => {
              res.resume();
              resolve({ status: res.statusCode!, headers: res.headers });
            },
          )
            .on('error', reject)
            .end(),
        );
      const preflight = await get({ origin, 'access-control-request-method': 'POST' }, 'OPTIONS');
      expect(preflight.status).toBe(204);
      expect(preflight.headers).toMatchObject({
        'access-control-allow-origin': origin,
        'access-control-allow-headers': 'authorization, content-type',
      });
      expect((await get({ origin })).headers['access-control-allow-origin']).toBe(origin);
      expect((await get({ origin: 'http://localhost:6666' })).status).toBe(403);

      // --no-auth: any key (or none) will do.
      const open = new OpenAI({ baseURL: other.baseUrl, apiKey: 'anything', maxRetries: 0 });
      const fromFile = await open.chat.completions.create({
        model: 'tiny',
        messages: [imageMessage('Hi', pathToFileURL(pngFile).href)],
        max_tokens: 4,
      });
      const fromData = await open.chat.completions.create({ model: 'tiny', messages: [imageMessage('Hi')], max_tokens: 4 });
      expect(fromFile.choices[0].message.content).toBe(fromData.choices[0].message.content);
      expect(xOf(fromFile).visual_tokens.total).toBe(16);
    } finally {
      await other.close();
    }
    await expect(startApiServer({ backend: core, port: 0, model: 'llava-13b' })).rejects.toMatchObject({ status: 404 });
  });
});
