import { z } from 'zod';

/**
 * Every call across a process boundary answers with a Result instead of throwing, so the
 * error code and message survive IPC (Electron keeps only `message` of a thrown error).
 */

export const ErrorCode = z.enum([
  'invalid-request', // the payload failed its schema
  'unknown-call', // no such call name
  'forbidden', // the sender is not our own window
  'not-found',
  'cancelled',
  'timeout',
  'engine-unavailable', // the engine is starting, restarting or stopped
  'engine-crashed', // the engine died while the call was in flight
  'internal',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const AppError = z.object({ code: ErrorCode, message: z.string() });
export type AppError = z.infer<typeof AppError>;

export type Result<T> = { ok: true; value: T } | { ok: false; error: AppError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function err<T = never>(code: ErrorCode, message: string): Result<T> {
  return { ok: false, error: { code, message } };
}

/** The schema of a Result carrying `value`. */
export function resultOf<T extends z.ZodType>(value: T) {
  return z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), value }), z.object({ ok: z.literal(false), error: AppError })]);
}

/** An error that carries its code through `throw`; handlers throw these, boundaries turn them into Results. */
export class CodedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A schema failure as a person reads it: `path: what was wrong` for the first few issues. */
export function describeIssues(error: z.ZodError, limit = 3): string {
  const issues = error.issues.slice(0, limit).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  const more = error.issues.length - limit;
  return `${issues.join('; ')}${more > 0 ? ` (and ${more} more)` : ''}`;
}

/** Turns anything thrown into a Result error, keeping the code of a CodedError. */
export function errorFrom(e: unknown): { ok: false; error: AppError } {
  if (e instanceof CodedError) return { ok: false, error: { code: e.code, message: e.message } };
  if (e instanceof z.ZodError) return { ok: false, error: { code: 'invalid-request', message: z.prettifyError(e) } };
  return { ok: false, error: { code: 'internal', message: e instanceof Error ? e.message : String(e) } };
}
