import { EngineRequestMessage, engineCalls, parseRequest, type EngineOutMessage } from '../../shared/ipc.js';
import { CodedError, errorFrom, ok } from '../../shared/result.js';
import type { CallContext, EngineHandlers, HandledCall } from './handlers.js';
import type { ParentPort } from './port.js';

/**
 * The engine's message loop: validates each request against the contract, runs its handler
 * with an AbortController kept under its id, and answers with the same id. `cancel {id}`
 * aborts one request; `shutdown` aborts all, waits until they have answered, answers, then exits.
 */
export function serveEngine(port: ParentPort, handlers: EngineHandlers, exit: () => Promise<void>): void {
  const inFlight = new Map<number, { controller: AbortController; answered: Promise<void> }>();
  // A parent that vanished cannot be answered; the process ends on disconnect anyway.
  const send = (message: EngineOutMessage) => port.post(message).catch(() => {});

  async function answer(id: number, produce: () => Promise<unknown>): Promise<void> {
    const result = await produce().then(ok, errorFrom);
    await send({ id, ...result });
  }

  port.onMessage((raw) => {
    const envelope = EngineRequestMessage.safeParse(raw);
    if (!envelope.success) {
      console.error(`engine: dropped a malformed message: ${String(JSON.stringify(raw)).slice(0, 200)}`);
      return;
    }
    const { id, type, payload } = envelope.data;
    if (type === 'cancel') {
      void answer(id, () => cancel(payload));
    } else if (type === 'ping') {
      void answer(id, async () => engineCalls.ping.request.parse(payload));
    } else if (type === 'shutdown') {
      // Exit only once the answer has been handed to the transport.
      void answer(id, () => drain(payload)).then(exit);
    } else if (inFlight.has(id)) {
      void answer(id, async () => {
        throw new CodedError('invalid-request', `request id ${id} is already in flight`);
      });
    } else {
      const controller = new AbortController();
      const answered = answer(id, () => runHandler(id, type, payload, controller.signal)).finally(() => inFlight.delete(id));
      inFlight.set(id, { controller, answered });
    }
  });

  /** A request that was cancelled answers `cancelled`, whatever its handler made of the abort. */
  async function runHandler(id: number, type: string, payload: unknown, signal: AbortSignal): Promise<unknown> {
    const { name, request } = parseRequest(engineCalls, type, payload);
    const handler = handlers[name as HandledCall] as (request: unknown, ctx: CallContext) => Promise<unknown>;
    const cancelled = () => new CodedError('cancelled', 'cancelled');
    const value = await handler(request, { signal, emit: (event, eventPayload) => void send({ id, event, payload: eventPayload }) }).catch(
      (e: unknown) => {
        throw signal.aborted ? cancelled() : e;
      },
    );
    if (signal.aborted) throw cancelled();
    return value;
  }

  async function cancel(payload: unknown): Promise<unknown> {
    const target = inFlight.get(engineCalls.cancel.request.parse(payload).id);
    target?.controller.abort();
    return { found: target !== undefined };
  }

  /** Aborts every in-flight request and waits until each has sent its (cancelled) answer. */
  async function drain(payload: unknown): Promise<unknown> {
    engineCalls.shutdown.request.parse(payload);
    for (const { controller } of inFlight.values()) controller.abort();
    await Promise.allSettled([...inFlight.values()].map((r) => r.answered));
    return {};
  }
}
