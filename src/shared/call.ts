import type { z } from 'zod';

/** One entry of a call table (ipc.ts, ipc-features.ts): request and response schemas, and the events the callee streams. */
export interface CallSpec<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType, Ev extends string = string> {
  request: Req;
  response: Res;
  /** The events the callee streams while it runs (tagged with the request id; names from the engine's event table). */
  events: readonly Ev[];
}

export const call = <Req extends z.ZodType, Res extends z.ZodType, Ev extends string = never>(
  request: Req,
  response: Res,
  events: readonly Ev[] = [],
): CallSpec<Req, Res, Ev> => ({ request, response, events });
