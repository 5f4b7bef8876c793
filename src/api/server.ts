import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Answer, ModelSummary } from '../shared/ipc-features.js';
import type { ApiLogEntry } from '../shared/ipc-server.js';
import { CodedError, describeIssues } from '../shared/result.js';
import { AppSettings } from '../shared/settings.js';
import type { AppHandlers } from '../main/app-handlers.js';
import type { EngineHost } from '../main/engine-host.js';
import { askRequestOf, findModel, METHOD_EXAMPLES, promptOf, transpruneBlockOf, usageOf } from './completions.js';
import { ImageIntake } from './images.js';
import { ApiError, ChatCompletionRequest, completionId, finishReasonOf, unixSeconds } from './openai.js';
import { RequestQueue } from './queue.js';

/**
 * The local OpenAI-compatible server: `GET /v1/models` and `POST /v1/chat/completions` (streamed as
 * server-sent events or not) over the app's engine process, for scripts, notebooks and other apps.
 * It enters the engine the way every host does, through the EngineHost's typed calls, and leaves the
 * engine to whoever owns it (Electron main, or `npm run serve`). Safe by default: loopback only, a
 * bearer key, no CORS, bounded bodies, images checked as the app checks them, installed models only.
 */

export const DEFAULT_PORT = 1234;
export const DEFAULT_LIMITS = {
  /** Request bodies: an image of up to about 15 MB as base64, with room for the conversation. */
  maxBodyBytes: 20 * 1024 * 1024,
  /** Requests waiting for the engine while one runs; more are refused with 429. */
  queue: 8,
};

/** What the server needs of the app (an AppCore is one): its engine, and its settings for the defaults of a request. */
export interface ApiBackend {
  engine: EngineHost;
  handlers: Pick<AppHandlers, 'settings.get'>;
}

export interface ApiServerOptions {
  backend: ApiBackend;
  /** Where to listen: 127.0.0.1 unless given (any other address is reachable from the network). */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The bearer key clients must send: a fresh random one when absent, none at all when null. */
  apiKey?: string | null;
  /** The one web origin allowed to call (CORS), or `*`; no CORS headers at all when absent. */
  cors?: string;
  /** Accept `file://` image URLs (paths on this machine). */
  allowFileUrls?: boolean;
  /** Serve only this installed model (name or pack id); all installed models when absent. */
  model?: string;
  limits?: Partial<typeof DEFAULT_LIMITS>;
}

export interface ApiServer {
  /** The base URL clients take (`.../v1`). */
  baseUrl: string;
  apiKey: string | null;
  /** True when it listens on an address other than loopback. */
  exposed: boolean;
  onLog(listener: (entry: ApiLogEntry) => void): () => void;
  /** Stops listening, cancels requests in flight and waiting; leaves the engine running. */
  close(): Promise<void>;
}

/** Why the server could not start, in one line for the person who typed the command. */
export class ApiServerError extends Error {}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { backend, cors } = options;
  const { engine } = backend;
  const appSettings = async () => AppSettings.parse(await backend.handlers['settings.get']({}));
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const host = options.host ?? '127.0.0.1';
  const exposed = !LOOPBACK.has(host);
  const apiKey = options.apiKey === undefined ? `tp-${randomBytes(24).toString('base64url')}` : options.apiKey;
  const keyDigest = apiKey === null ? null : digest(apiKey);
  const queue = new RequestQueue(limits.queue);
  const images = await ImageIntake.open(options.allowFileUrls ?? false);
  const listeners = new Set<(entry: ApiLogEntry) => void>();
  const inFlight = new Set<AbortController>();

  if (options.model !== undefined) findModel(await installedModels(), options.model);

  const server = createServer((request, response) => void serve(request, response));

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    const entry: ApiLogEntry = {
      id: `req-${randomBytes(8).toString('hex')}`,
      at: Date.now(),
      method: request.method ?? '',
      path,
      status: 0,
      outcome: 'done',
      ms: 0,
    };
    const controller = new AbortController();
    inFlight.add(controller);
    // The client went away before its answer was complete: the engine stops between decode steps.
    response.on('close', () => response.writableFinished || controller.abort());
    try {
      admit(request);
      if (request.method === 'OPTIONS') return preflight(request, response);
      const route = `${request.method} ${path.replace(/\/+$/, '')}`;
      if (route === 'GET /v1/models') return sendJson(request, response, 200, await modelList());
      if (request.method === 'GET' && path.startsWith('/v1/models/')) {
        const model = await modelCard(findModel(await servedModels(), decodedSegment(path.slice('/v1/models/'.length))));
        return sendJson(request, response, 200, model);
      }
      if (route === 'POST /v1/chat/completions') return await completions(request, response, entry, controller.signal);
      if (['/v1/models', '/v1/chat/completions'].includes(path))
        throw new ApiError(405, 'method_not_allowed', `${request.method} is not allowed on ${path}.`);
      throw new ApiError(
        404,
        'unknown_url',
        `Unknown request URL: ${request.method} ${path}. This server has GET /v1/models and POST /v1/chat/completions.`,
      );
    } catch (e) {
      const error = apiErrorOf(e);
      entry.error = error.message;
      entry.outcome = error.code === 'cancelled' ? 'cancelled' : 'error';
      if (response.headersSent) writeEvent(response, error.body);
      else sendJson(request, response, error.status, error.body);
      if (error.status === 413) discard(request, limits.maxBodyBytes * 4);
    } finally {
      inFlight.delete(controller);
      if (!response.writableEnded) response.end();
      // A client gone before the answer began was sent nothing: its request is logged with nginx's 499.
      entry.status = entry.outcome === 'cancelled' && !response.headersSent ? 499 : response.statusCode;
      entry.ms = Date.now() - entry.at;
      for (const listener of listeners) listener(entry);
    }
  }

  /** The checks every request passes first: a host name of ours (no DNS rebinding), an allowed web origin, the key. */
  function admit(request: IncomingMessage): void {
    if (!exposed) {
      const name = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (!LOOPBACK.has(name)) throw new ApiError(421, 'host_not_allowed', 'This server answers requests to 127.0.0.1 or localhost only.');
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(origin)) {
      throw new ApiError(403, 'origin_not_allowed', 'Web pages may not call this server unless it was started with --cors <their origin>.');
    }
    if (request.method === 'OPTIONS' || keyDigest === null) return;
    const given = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1]?.trim();
    if (given === undefined || !timingSafeEqual(digest(given), keyDigest)) {
      throw new ApiError(
        401,
        'invalid_api_key',
        'Incorrect API key provided. Send the key the server printed as `Authorization: Bearer <key>`.',
      );
    }
  }

  function originAllowed(origin: string): boolean {
    return cors === '*' || cors === origin;
  }

  function corsHeaders(request: IncomingMessage): Record<string, string> {
    const origin = request.headers.origin;
    if (cors === undefined || origin === undefined || !originAllowed(origin)) return {};
    return { 'access-control-allow-origin': cors === '*' ? '*' : origin, vary: 'origin' };
  }

  function preflight(request: IncomingMessage, response: ServerResponse): void {
    if (cors === undefined)
      throw new ApiError(405, 'method_not_allowed', 'This server sends no CORS headers unless started with --cors <origin>.');
    response
      .writeHead(204, {
        ...corsHeaders(request),
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '600',
      })
      .end();
  }

  async function installedModels(): Promise<ModelSummary[]> {
    await engineReady();
    return engine.call('models.list', {});
  }

  async function servedModels(): Promise<ModelSummary[]> {
    const models = await installedModels();
    return options.model === undefined ? models : [findModel(models, options.model)];
  }

  async function modelList() {
    return { object: 'list', data: await Promise.all((await servedModels()).map(modelCard)) };
  }

  async function modelCard(model: ModelSummary) {
    const settings = await appSettings();
    const created = await stat(model.path).then(
      (s) => Math.floor(s.mtimeMs / 1000),
      () => 0,
    );
    const details = model.details;
    return {
      id: model.name,
      object: 'model',
      created,
      owned_by: 'local',
      x_transprune: {
        pack_id: model.id,
        architecture: details?.architecture,
        parameters: details?.parameters,
        dtype: details?.dtype,
        layers: details?.layers,
        visual_tokens: details?.visualTokens,
        methods: METHOD_EXAMPLES,
        default_method: settings.method,
      },
    };
  }

  async function completions(request: IncomingMessage, response: ServerResponse, entry: ApiLogEntry, signal: AbortSignal): Promise<void> {
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
      throw new ApiError(415, 'unsupported_media_type', 'Send the request as JSON (Content-Type: application/json).');
    }
    const parsed = ChatCompletionRequest.safeParse(await readJson(request, limits.maxBodyBytes));
    if (!parsed.success) {
      throw new ApiError(400, 'invalid_request', describeIssues(parsed.error), parsed.error.issues[0]?.path.join('.') || null);
    }
    const body = parsed.data;
    const model = findModel(await servedModels(), body.model);
    const { turns, imageUrl } = promptOf(body.messages);
    const settings = await appSettings();
    const id = completionId();
    Object.assign(entry, { id, model: model.name, stream: body.stream === true });
    const image = imageUrl === undefined ? undefined : await images.fileFor(imageUrl);
    try {
      const ask = askRequestOf(body, model, turns, image?.path, settings);
      await queue.run(async () => {
        await engineReady(signal);
        const stream = body.stream ? openStream(request, response, id, model.name) : undefined;
        entry.textEvents = 0;
        const answer = await engine.call('chat.ask', ask, {
          signal,
          onEvent: (event) => {
            if (event.event !== 'text') return;
            entry.textEvents!++;
            stream?.text(event.payload.delta);
          },
        });
        const usage = usageOf(answer);
        Object.assign(entry, { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens });
        const x_transprune = transpruneBlockOf(answer, body.transprune?.trace === true);
        if (stream) return stream.finish(answer, body.stream_options?.include_usage ? usage : undefined, x_transprune);
        sendJson(request, response, 200, {
          id,
          object: 'chat.completion',
          created: unixSeconds(),
          model: model.name,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: answer.text, refusal: null },
              logprobs: null,
              finish_reason: finishReasonOf(answer.finishReason),
            },
          ],
          usage,
          x_transprune,
        });
      }, signal);
    } finally {
      await image?.release();
    }
  }

  /** Waits while the engine starts or restarts after a crash (the host's watchdog restarts it); refuses when it is stopped. */
  async function engineReady(signal?: AbortSignal): Promise<void> {
    const status = engine.status;
    if (status.state === 'ready' || status.state === 'busy') return;
    if (status.state === 'stopped')
      throw new ApiError(503, 'engine_unavailable', `The engine is stopped${status.reason ? ` (${status.reason})` : ''}.`);
    await new Promise<void>((resolve, reject) => {
      const cancelled = () => reject(new ApiError(499, 'cancelled', 'The client closed the request.'));
      signal?.addEventListener('abort', cancelled, { once: true });
      engine
        .whenReady()
        .then(resolve, (e: Error) => reject(new ApiError(503, 'engine_unavailable', `The engine is unavailable: ${e.message}`)))
        .finally(() => signal?.removeEventListener('abort', cancelled));
    });
  }

  function sendJson(request: IncomingMessage, response: ServerResponse, status: number, body: unknown): void {
    if (response.writableEnded || response.destroyed) return;
    response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...corsHeaders(request) });
    response.end(JSON.stringify(body));
  }

  /** A streamed answer: OpenAI's chunks as server-sent events, `data: [DONE]` last. */
  function openStream(request: IncomingMessage, response: ServerResponse, id: string, model: string) {
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...corsHeaders(request),
    });
    response.socket?.setNoDelay(true);
    const created = unixSeconds();
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      writeEvent(response, { id, object: 'chat.completion.chunk', created, model, choices, ...extra });
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    return {
      text: (delta: string) => chunk([{ index: 0, delta: { content: delta }, logprobs: null, finish_reason: null }]),
      finish(answer: Answer, usage: ReturnType<typeof usageOf> | undefined, x_transprune: unknown) {
        chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReasonOf(answer.finishReason) }], { x_transprune });
        if (usage) chunk([], { usage });
        if (!response.destroyed) response.write('data: [DONE]\n\n');
      },
    };
  }

  await listen(server, host, options.port ?? DEFAULT_PORT);
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;

  return {
    baseUrl: `http://${shownHost}:${port}/v1`,
    apiKey,
    exposed,
    onLog(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      for (const controller of inFlight) controller.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await images.close();
    },
  };
}

function writeEvent(response: ServerResponse, data: unknown): void {
  if (!response.destroyed && !response.writableEnded) response.write(`data: ${JSON.stringify(data)}\n\n`);
}

function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** The body as JSON, refusing it (413) as soon as it is known to be larger than `maxBytes`. */
async function readJson(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const tooLarge = () => new ApiError(413, 'request_too_large', `The request body is larger than ${maxBytes / 2 ** 20} MB.`);
  if (Number(request.headers['content-length']) > maxBytes) throw tooLarge();
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      request.off('data', onData);
      reject(tooLarge());
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.once('error', reject);
    // A client that goes away mid-body: 'close' without 'end' (after 'end', this reject is a no-op).
    request.once('close', () => reject(new ApiError(499, 'cancelled', 'The client closed the request.')));
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'The request body is not valid JSON.');
  }
}

/** Reads and drops the rest of a refused body, so the client gets to read the refusal; a body far past the limit is cut off. */
function discard(request: IncomingMessage, maxBytes: number): void {
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) request.destroy();
  });
  request.resume();
}

/** Every failure as OpenAI's error: the engine's codes mapped to HTTP statuses, never a stack trace. */
function apiErrorOf(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof CodedError) {
    switch (e.code) {
      case 'invalid-request':
        return new ApiError(400, 'invalid_request', e.message);
      case 'not-found':
        return new ApiError(404, 'model_not_found', e.message, 'model');
      case 'cancelled':
        return new ApiError(499, 'cancelled', 'The client closed the request.');
      case 'engine-crashed':
        return new ApiError(
          500,
          'engine_crashed',
          `The engine stopped during this request and is being restarted; send it again. (${e.message})`,
        );
      case 'engine-unavailable':
        return new ApiError(503, 'engine_unavailable', e.message);
    }
  }
  return new ApiError(500, 'internal_error', `The engine could not answer: ${e instanceof Error ? e.message : String(e)}`);
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new ApiServerError(`port ${port} is already in use (another server running?): pass --port <n>, or --port 0 for any free port`)
          : err.code === 'EACCES'
            ? new ApiServerError(`port ${port} needs more privileges: pass --port <n> with n above 1023`)
            : new ApiServerError(`cannot listen on ${host}:${port}: ${err.message}`),
      ),
    );
    server.listen(port, host, resolve);
  });
}
