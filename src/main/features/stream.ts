import type { AnswerStats } from '../../shared/conversation.js';
import type { Answer, AnswerUpdate } from '../../shared/ipc-features.js';
import { CodedError } from '../../shared/result.js';

/** How often the renderer gets the growing text, and how often it is saved to disk. */
export const EMIT_EVERY_MS = 50;
export const SAVE_EVERY_MS = 500;

export interface StreamJob {
  signal: AbortSignal;
  work(onText: (delta: string) => void): Promise<Answer>;
  emit(update: AnswerUpdate): void;
  save(text: string): Promise<unknown>;
  /** Persists the final state; returns the trace id if a trace was stored. */
  finish(
    outcome: { status: 'done' | 'interrupted' | 'error'; text: string; stats?: AnswerStats; error?: string },
    result?: Answer,
  ): Promise<string | undefined>;
}

/**
 * Runs one streaming answer: batches text updates to the renderer (one event per EMIT_EVERY_MS, not one
 * per token) and to disk (SAVE_EVERY_MS), then records how it ended. A stop keeps the text so far.
 */
export async function streamAnswer(job: StreamJob): Promise<void> {
  let text = '';
  let lastEmit = 0;
  let lastSave = Date.now();
  let saving: Promise<unknown> = Promise.resolve();
  const onText = (delta: string) => {
    text += delta;
    const now = Date.now();
    if (now - lastEmit >= EMIT_EVERY_MS) {
      lastEmit = now;
      job.emit({ text, status: 'streaming' });
    }
    if (now - lastSave >= SAVE_EVERY_MS) {
      lastSave = now;
      const snapshot = text;
      saving = saving.then(() => job.save(snapshot)).catch(() => undefined);
    }
  };

  let update: AnswerUpdate;
  let result: Answer | undefined;
  try {
    result = await job.work(onText);
    update = { text: result.text, status: 'done', stats: result.stats };
  } catch (err) {
    update = job.signal.aborted
      ? { text, status: 'interrupted' }
      : isCrash(err)
        ? { text, status: 'interrupted', error: (err as Error).message } // the engine died mid-answer: keep what it said
        : { text, status: 'error', error: (err as Error).message };
  }
  await saving;
  const { status, text: finalText, stats, error } = update;
  try {
    const traceId = await job.finish({ status: status as 'done' | 'interrupted' | 'error', text: finalText, stats, error }, result);
    job.emit({ ...update, ...(traceId && { traceId }) });
  } catch (err) {
    job.emit({ text: finalText, status: 'error', error: `The answer could not be saved: ${(err as Error).message}` });
  }
}

function isCrash(err: unknown): boolean {
  return err instanceof CodedError && err.code === 'engine-crashed';
}
