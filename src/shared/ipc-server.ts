import { z } from 'zod';
import { call } from './call.js';

/**
 * The app API's calls for the local OpenAI-compatible server (src/api), which main owns: Settings'
 * "Local server" switch starts and stops it and shows its URL, key and live request log. Spread into
 * `appCalls` / `appEvents` in ipc.ts.
 */

const None = z.object({}).strict();

/** What `npm run serve` takes as flags. */
export const LocalServerOptions = z.object({
  port: z.number().int().min(0).max(65535).default(1234),
  /** Serve only this installed model (name or id); all of them when absent. */
  model: z.string().min(1).max(256).optional(),
  /** Require the bearer key (a fresh random one each start); off is `--no-auth`. */
  requireKey: z.boolean().default(true),
  /** Listen on every interface (0.0.0.0): reachable from the network. Loopback only otherwise. */
  network: z.boolean().default(false),
  /** The one web origin allowed to call, with CORS headers. */
  cors: z.string().min(1).max(512).optional(),
  allowFileUrls: z.boolean().default(false),
});
export type LocalServerOptions = z.infer<typeof LocalServerOptions>;

/** One finished request, as the server's log shows it. */
export const ApiLogEntry = z.object({
  /** Unique per request: a completion's own id (`chatcmpl-...`), `req-...` for the others. */
  id: z.string(),
  /** When it arrived (ms since the epoch). */
  at: z.number(),
  method: z.string(),
  path: z.string(),
  status: z.number().int(),
  outcome: z.enum(['done', 'cancelled', 'error']),
  ms: z.number().nonnegative(),
  model: z.string().optional(),
  stream: z.boolean().optional(),
  promptTokens: z.number().int().nonnegative().optional(),
  completionTokens: z.number().int().nonnegative().optional(),
  /** Pieces of answer text the engine sent (about one per token), also for an answer that was cancelled. */
  textEvents: z.number().int().nonnegative().optional(),
  error: z.string().optional(),
});
export type ApiLogEntry = z.infer<typeof ApiLogEntry>;

export const LocalServerStatus = z.object({
  running: z.boolean(),
  /** While running: what clients take. */
  baseUrl: z.string().optional(),
  apiKey: z.string().nullable().optional(),
  /** Listening on the network, not loopback only. */
  exposed: z.boolean().optional(),
  /** The options it runs with (or last ran with). */
  options: LocalServerOptions.optional(),
  /** The latest requests, oldest first. */
  log: z.array(ApiLogEntry),
});
export type LocalServerStatus = z.infer<typeof LocalServerStatus>;

export const serverCalls = {
  'server.status': call(None, LocalServerStatus),
  /** Starts the server (restarts it with the new options when it runs). */
  'server.start': call(LocalServerOptions, LocalServerStatus),
  'server.stop': call(None, LocalServerStatus),
};

export const serverEvents = {
  /** A request the local server finished. */
  'server.log': ApiLogEntry,
};
