import { z } from 'zod';
import { call, type CallSpec } from './call.js';
import { featureCalls, featureEngineCalls, featureEngineEvents, featureEvents, ModelSummary } from './ipc-features.js';
import { serverCalls, serverEvents } from './ipc-server.js';
import { Progress } from './progress.js';
import { AppError, CodedError, resultOf, type Result } from './result.js';

/**
 * The one IPC contract. Two layers share its data types:
 *   (a) the app API, renderer <-> main (or the web host): `appCalls` + `appEvents`;
 *   (b) the engine protocol, main <-> engine process: `engineCalls` + `engineEvents`.
 * Every call entry is a request schema, a response schema and the events it streams (`call`); adding a
 * call is one entry (here, or in ipc-features.ts for the app's features) plus one handler:
 * src/main/app-handlers.ts or src/main/features/feature-handlers.ts for app calls,
 * src/engine/worker/handlers.ts for engine calls.
 * Pure zod: no node, DOM or electron imports.
 */

export type CallTable = Record<string, CallSpec>;
export type EventTable = Record<string, z.ZodType>;
export type RequestOf<T extends CallTable, K extends keyof T> = z.input<T[K]['request']>;
export type ResponseOf<T extends CallTable, K extends keyof T> = z.output<T[K]['response']>;
export type PayloadOf<T extends EventTable, E extends keyof T> = z.output<T[E]>;

export const Empty = z.object({}).strict();
export const RequestId = z.number().int().nonnegative();

// ---------------------------------------------------------------- shared data

/** What the engine found out about one onnxruntime execution provider. */
export const ProviderProbe = z.object({
  name: z.string(),
  /** Shipped inside the onnxruntime-node package (false: its libraries must be installed separately). */
  bundled: z.boolean(),
  /** A one-node session was created and run on it. */
  loads: z.boolean(),
  error: z.string().optional(),
});
export type ProviderProbe = z.infer<typeof ProviderProbe>;

export const EngineInfo = z.object({
  pid: z.number().int(),
  versions: z.object({ node: z.string(), onnxruntime: z.string(), protocol: z.number().int() }),
  providers: z.array(ProviderProbe),
  /** The provider new sessions use: the preferred one among those that load. */
  activeProvider: z.string(),
});
export type EngineInfo = z.infer<typeof EngineInfo>;

export const EngineState = z.enum(['starting', 'ready', 'busy', 'crashed', 'restarting', 'stopped']);
export type EngineState = z.infer<typeof EngineState>;

export const EngineStatus = z.object({
  state: EngineState,
  /** Why the engine crashed, is restarting or stopped. */
  reason: z.string().optional(),
  /** From the latest ready handshake. */
  info: EngineInfo.optional(),
  restarts: z.number().int().nonnegative(),
  /** Why the engine last crashed, kept after it restarted (for Settings). */
  lastCrash: z.string().optional(),
});
export type EngineStatus = z.infer<typeof EngineStatus>;

export { ModelSummary };
export type { ModelDetails } from './ipc-features.js';

/** Runs the probe graph repeatedly on the active provider: proves the engine computes and answers. */
export const SelfTestRequest = z.object({ runs: z.number().int().min(1).max(100_000) });
export const SelfTestResult = z.object({
  provider: z.string(),
  runs: z.number().int().nonnegative(),
  meanMs: z.number().nonnegative(),
});
export type SelfTestResult = z.infer<typeof SelfTestResult>;

// ---------------------------------------------------------------- (a) app API: renderer <-> main

export const appCalls = {
  'engine.status': call(Empty, EngineStatus),
  'engine.restart': call(Empty, EngineStatus),
  'engine.selfTest': call(SelfTestRequest, SelfTestResult),
  'models.list': call(Empty, z.array(ModelSummary)),
  // App UI section (chat, images, compare, traces, exports, settings): src/shared/ipc-features.ts
  ...featureCalls,
  // The local OpenAI-compatible server (Settings' switch): src/shared/ipc-server.ts
  ...serverCalls,
} satisfies CallTable;

export const appEvents = {
  'engine.status': EngineStatus,
  ...featureEvents,
  ...serverEvents,
} satisfies EventTable;

export type AppCalls = typeof appCalls;
export type AppCallName = keyof AppCalls;
export type AppRequest<K extends AppCallName> = RequestOf<AppCalls, K>;
export type AppResponse<K extends AppCallName> = ResponseOf<AppCalls, K>;
export type AppEvents = typeof appEvents;
export type AppEventName = keyof AppEvents;
export type AppEventPayload<E extends AppEventName> = PayloadOf<AppEvents, E>;

export const appCallNames = Object.keys(appCalls) as AppCallName[];
export const appEventNames = Object.keys(appEvents) as AppEventName[];

/** Electron channels: one invoke channel per call, one channel for all pushed events. */
export const appCallChannel = (name: AppCallName): string => `app:${name}`;
export const APP_EVENT_CHANNEL = 'app:event';
export const AppEventMessage = z.object({ event: z.string(), payload: z.unknown() });

type Namespace<K> = K extends `${infer N}.${string}` ? N : never;
/**
 * `window.api` as the preload exposes it: one function per call, grouped by the prefix of its
 * name (`api.engine.status({})`), plus `on(event, listener)` returning an unsubscribe.
 */
export type WindowApi = {
  [N in Namespace<AppCallName>]: {
    [K in AppCallName as K extends `${N}.${infer M}` ? M : never]: (request: AppRequest<K>) => Promise<Result<AppResponse<K>>>;
  };
} & {
  on<E extends AppEventName>(event: E, listener: (payload: AppEventPayload<E>) => void): () => void;
};

/** The web bridge speaks the app API over one WebSocket. */
export const WsRequest = z.object({ id: RequestId, call: z.string(), payload: z.unknown() });
export type WsRequest = z.infer<typeof WsRequest>;
export const WsResponse = z.object({ id: RequestId, result: resultOf(z.unknown()) });
export const WsServerMessage = z.union([WsResponse, AppEventMessage]);
export type WsServerMessage = z.infer<typeof WsServerMessage>;

// ---------------------------------------------------------------- (b) engine protocol: main <-> engine process

/** Bumped when a message shape changes incompatibly; the host refuses an engine that differs. */
export const ENGINE_PROTOCOL_VERSION = 1;

export const engineCalls = {
  'models.list': call(Empty, z.array(ModelSummary)),
  'engine.selfTest': call(SelfTestRequest, SelfTestResult, ['progress']),
  /** Aborts the request `id`; its own response then arrives as error `cancelled`. */
  cancel: call(z.object({ id: RequestId }), z.object({ found: z.boolean() })),
  /** Finishes in-flight work as cancelled, answers, then the process exits 0. */
  shutdown: call(Empty, Empty),
  /** Answered at once by the message loop: the host's watchdog asks it while calls are in flight. */
  ping: call(Empty, Empty),
  // App UI section (answers for chat and compare): src/shared/ipc-features.ts
  ...featureEngineCalls,
} satisfies CallTable;

export const engineEvents = {
  /** The handshake: sent once, unrequested, when the engine can take calls. */
  ready: EngineInfo,
  /** Streamed by long calls, tagged with their request id. */
  progress: Progress,
  ...featureEngineEvents,
} satisfies EventTable;

export type EngineCalls = typeof engineCalls;
export type EngineCallName = keyof EngineCalls;
export type EngineRequest<K extends EngineCallName> = RequestOf<EngineCalls, K>;
export type EngineResponse<K extends EngineCallName> = ResponseOf<EngineCalls, K>;
export type EngineEvents = typeof engineEvents;
export type EngineEventName = keyof EngineEvents;
export type EngineEventPayload<E extends EngineEventName> = PayloadOf<EngineEvents, E>;
/** The events call `K` streams, each with its own payload type. */
export type EngineCallEventName<K extends EngineCallName> = EngineCalls[K]['events'][number] & EngineEventName;
export type EngineCallEvent<K extends EngineCallName> = EngineEventOf<EngineCallEventName<K>>;
type EngineEventOf<E extends EngineEventName> = E extends EngineEventName ? { event: E; payload: EngineEventPayload<E> } : never;

/** Envelopes. Payloads are checked against the tables above by `parseRequest` / `parseCallEvent`. */
export const EngineRequestMessage = z.object({ id: RequestId, type: z.string(), payload: z.unknown() });
export type EngineRequestMessage = z.infer<typeof EngineRequestMessage>;
export const EngineResponseMessage = z.discriminatedUnion('ok', [
  z.object({ id: RequestId, ok: z.literal(true), value: z.unknown() }),
  z.object({ id: RequestId, ok: z.literal(false), error: AppError }),
]);
export type EngineResponseMessage = z.infer<typeof EngineResponseMessage>;
export const EngineEventMessage = z.object({ id: RequestId.optional(), event: z.string(), payload: z.unknown() });
export type EngineEventMessage = z.infer<typeof EngineEventMessage>;
/** What the engine sends: a response (has `ok`) or an event (has `event`). */
export const EngineOutMessage = z.union([EngineResponseMessage, EngineEventMessage]);
export type EngineOutMessage = z.infer<typeof EngineOutMessage>;

// ---------------------------------------------------------------- validation helpers

export type ParsedCall<T extends CallTable> = { [K in keyof T & string]: { name: K; request: z.output<T[K]['request']> } }[keyof T &
  string];

/** Validates a call name and its payload against a table; throws a ZodError or a CodedError('unknown-call'). */
export function parseRequest<T extends CallTable>(table: T, name: string, payload: unknown): ParsedCall<T> {
  if (!Object.hasOwn(table, name)) throw new CodedError('unknown-call', `unknown call "${name}"`);
  return { name, request: table[name].request.parse(payload) } as ParsedCall<T>;
}

/** An event the engine streamed for call `name`, validated: null when the call does not stream it or the payload fails its schema. */
export function parseCallEvent<K extends EngineCallName>(name: K, event: string, payload: unknown): EngineCallEvent<K> | null {
  if (!(engineCalls[name].events as readonly string[]).includes(event)) return null;
  const parsed = engineEvents[event as EngineEventName].safeParse(payload);
  if (!parsed.success) return null;
  const validated = { event, payload: parsed.data };
  return validated as EngineCallEvent<K>;
}
