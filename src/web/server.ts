import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { WsRequest, type AppEventName, type WsServerMessage } from '../shared/ipc.js';
import { createAppCore } from '../main/app-core.js';
import type { EngineHost } from '../main/engine-host.js';
import { nodeEngineSpawner } from '../main/engine-process-node.js';
import { modelStoreDir } from '../main/paths.js';
import { staticResponse } from '../main/protocol.js';
import { RENDERER_CSP } from '../main/security.js';

/**
 * The web bridge: the built renderer over HTTP and the app API over one WebSocket (/api),
 * served by the same app core (handlers, storage, engine host) as Electron main, with the engine
 * as a Node child process. Binds to loopback only. A socket needs our origin (so other web pages
 * cannot drive it) and the launch's random token (so other local processes cannot either): the
 * token travels in the page URL's fragment (`/#token=...`, never sent in a plain HTTP request) and
 * in the socket URL (`/api?token=...`), checked once on the upgrade. Each socket then receives the
 * events of its own calls only; the engine status and the model list go to every socket.
 */

export const WS_PATH = '/api';
const SAMPLES_DIR = fileURLToPath(new URL('../../resources/samples', import.meta.url));

/** Events that describe one caller's work (streamed answers, import and verification progress): sent to that caller's socket only. */
const CALLER_EVENTS: ReadonlySet<AppEventName> = new Set(['chat.answer', 'compare.answer', 'models.progress', 'models.verifyProgress']);

export interface WebHostOptions {
  /** The built renderer (out/renderer). */
  rendererDir: string;
  userData: string;
  /** 0 picks a free port. */
  port?: number;
  /** Engine entry; defaults to the TypeScript source run through tsx. */
  engineEntry?: string;
  engineStdio?: 'inherit' | 'ignore';
  restartBackoffMs?: number[];
  /** A checkpoint folder to install when the store is empty (the demo model). */
  bundledModel?: string;
  /** Sample images with questions for the empty chat; defaults to the repository's resources/samples. */
  samplesDir?: string;
  /** The token sockets must present; a fresh random one by default (tests reuse one across a restart). */
  token?: string;
}

export interface WebHost {
  /** The page to open, token included. */
  url: string;
  token: string;
  engine: EngineHost;
  close(): Promise<void>;
}

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const core = createAppCore({
    spawn: nodeEngineSpawner({ modelStore: modelStoreDir(options.userData), entry: options.engineEntry, stdio: options.engineStdio }),
    restartBackoffMs: options.restartBackoffMs,
    userData: options.userData,
    // No chooseSavePath: exports go back to the page, and the browser downloads them.
    bundledModel: options.bundledModel,
    samplesDir: options.samplesDir ?? SAMPLES_DIR,
  });

  const token = options.token ?? randomBytes(24).toString('base64url');
  let origin = '';
  const server = createServer(async (request, response) => {
    const path = pathOf(request);
    if (request.method !== 'GET' || !isOurHost(request) || path === null) {
      response.writeHead(request.method !== 'GET' ? 405 : path === null ? 400 : 421).end();
      return;
    }
    const csp = RENDERER_CSP.replace("connect-src 'self'", `connect-src 'self' ${origin.replace(/^http/, 'ws')}`);
    const { status, headers, body } = await staticResponse(options.rendererDir, path, csp);
    response.writeHead(status, { ...headers, 'cache-control': 'no-store' }).end(body);
  });

  // The largest requests: traces.read and conversations.import (up to 64 MiB of JSON) and images.add (25 MiB as base64).
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 96 * 1024 * 1024 });
  server.on('upgrade', (request, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = urlOf(request);
    if (
      url?.pathname !== WS_PATH ||
      !isOurHost(request) ||
      request.headers.origin !== origin ||
      !isOurToken(url.searchParams.get('token'))
    ) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => serveSocket(ws));
  });

  /** Whose call is running: events emitted from within it (even later, from its timers) belong to that socket. */
  const caller = new AsyncLocalStorage<WebSocket>();
  function serveSocket(ws: WebSocket): void {
    // A malformed frame or an over-long message ends this socket only, never the host.
    ws.on('error', (e) => {
      console.error(`web host: closed a socket: ${e.message}`);
      ws.terminate();
    });
    ws.on('message', async (data) => {
      const request = WsRequest.safeParse(safeJson(data.toString()));
      if (!request.success) return ws.close(1003, 'malformed request');
      const result = await caller.run(ws, () => core.call(request.data.call, request.data.payload));
      send(ws, { id: request.data.id, result });
    });
  }
  const stopEvents = core.onEvent((event, payload) => {
    const owner = CALLER_EVENTS.has(event) ? caller.getStore() : undefined;
    for (const ws of owner ? [owner] : sockets.clients) send(ws, { event, payload });
  });

  function urlOf(request: IncomingMessage): URL | null {
    try {
      return new URL(request.url ?? '/', origin);
    } catch {
      return null;
    }
  }

  function pathOf(request: IncomingMessage): string | null {
    return urlOf(request)?.pathname ?? null;
  }

  function isOurToken(given: string | null): boolean {
    const expected = Buffer.from(token);
    const actual = Buffer.from(given ?? '');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  function isOurHost(request: IncomingMessage): boolean {
    // Refuses DNS-rebinding requests that reach the loopback port under a foreign host name.
    return `http://${request.headers.host}` === origin;
  }

  await listen(server, options.port ?? 0);
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  core.start().catch((e: Error) => console.error(`start-up: ${e.message}`));

  return {
    url: `${origin}/#token=${token}`,
    token,
    engine: core.engine,
    async close() {
      stopEvents();
      for (const ws of sockets.clients) ws.terminate();
      await core.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // idle keep-alive connections would hold close() open
      await closed;
    },
  };
}

/** Why a web host could not start, in one line for the person who typed the command. */
export class WebHostError extends Error {}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new WebHostError(`port ${port} is already in use (another preview running?): pass --port <n>, or --port 0 for any free port`)
          : err.code === 'EACCES'
            ? new WebHostError(`port ${port} needs more privileges: pass --port <n> with n above 1023`)
            : new WebHostError(`cannot listen on 127.0.0.1:${port}: ${err.message}`),
      ),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
}

function send(ws: WebSocket, message: WsServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
