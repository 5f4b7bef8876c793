import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * The slice of OpenAI's chat-completions wire format the local server speaks: the request schema (with
 * the `transprune` extension), the error shape, and the ids and objects of its answers. What a request
 * means for the engine is completions.ts; the HTTP is server.ts.
 */

/** Bounds on one request beyond the body size: what a person or a script plausibly sends, and no more. */
export const REQUEST_LIMITS = {
  messages: 64,
  partsPerMessage: 16,
  /** Characters of text in one message (the app's chat takes 20 000 per question). */
  textChars: 100_000,
  /** The app's own ceiling on an answer's length (Settings, sampling). */
  maxTokens: 4096,
  stopStrings: 4,
};

const TextPart = z.object({ type: z.literal('text'), text: z.string().max(REQUEST_LIMITS.textChars) });
const ImagePart = z.object({
  type: z.literal('image_url'),
  // Clients send `{ url }`; a bare string is accepted too. `detail` has no meaning here: the model sees its own view size.
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]),
});
export type ImagePart = z.infer<typeof ImagePart>;
const Content = z.union([
  z.string().max(REQUEST_LIMITS.textChars),
  z.array(z.discriminatedUnion('type', [TextPart, ImagePart])).max(REQUEST_LIMITS.partsPerMessage),
]);

export const ChatMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: Content.nullable(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** The extension: which pruning method answers (the app's chat default when absent), and whether the trace comes back. */
export const TransPruneOptions = z
  .object({
    /** A method as the CLI and the app write it: `transprune-high`, `none`, `fastv:k=2,r=0.5`, `divprune:ratio=0.5+iga`... */
    method: z.string().max(200).optional(),
    /** Replaces the schedule of a transprune or random method: accumulate/prune/ratios, e.g. `7-12/7,9,12/0.875,0.625,0.125`. */
    schedule: z.string().max(200).optional(),
    /** TransPrune's weight of TTV against IGA. */
    alpha: z.number().min(0).max(1).optional(),
    /** Return the whole pruning trace (docs/trace-format.md) in `x_transprune.trace`. */
    trace: z.boolean().optional(),
  })
  .strict();
export type TransPruneOptions = z.infer<typeof TransPruneOptions>;

const tokenLimit = z.number().int().min(1).max(REQUEST_LIMITS.maxTokens);

/** A chat-completions request; fields OpenAI defines that change nothing here (`user`, `metadata`...) are ignored. */
export const ChatCompletionRequest = z.object({
  model: z.string().min(1).max(256),
  messages: z.array(ChatMessage).min(1).max(REQUEST_LIMITS.messages),
  max_tokens: tokenLimit.nullish(),
  max_completion_tokens: tokenLimit.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(REQUEST_LIMITS.stopStrings)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1, { error: 'only n = 1 is supported: the engine answers one choice per request' }).nullish(),
  tools: z.array(z.unknown()).max(0, { error: 'tools (function calling) are not supported by this server' }).nullish(),
  transprune: TransPruneOptions.optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** OpenAI's error kinds, by HTTP status. */
const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'invalid_request_error',
  403: 'permission_error',
  404: 'invalid_request_error',
  405: 'invalid_request_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'server_error',
  503: 'server_error',
};

/** A request the server refuses or could not answer: an HTTP status and OpenAI's error body, never a stack trace. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }

  get body(): { error: { message: string; type: string; param: string | null; code: string } } {
    return { error: { message: this.message, type: ERROR_TYPES[this.status] ?? 'server_error', param: this.param, code: this.code } };
  }
}

export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('hex')}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The engine's reasons as OpenAI names them: an end-of-sequence token and a stop string both read `stop`. */
export function finishReasonOf(reason: 'eos' | 'stop' | 'length' | 'cancelled' | undefined): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}
