import type { AnswerStats } from '../../shared/conversation.js';
import type { Answer, AnswerUpdate } from '../../shared/ipc-features.js';
import type { Progress } from '../../shared/progress.js';
import { CodedError } from '../../shared/result.js';
import type { AnswerListener } from './answerer.js';

/** How often the renderer gets the growing text (and layer-by-layer progress), and how often it is saved to disk. */
export const EMIT_EVERY_MS = 50;
export const SAVE_EVERY_MS = 500;

/** What the user reads when the engine died under an answer: what happened, that nothing is lost, and what to do. */
export const ENGINE_CRASHED_NOTE = 'The engine stopped unexpectedly and was restarted. Your text is kept.';

export interface StreamJob {
  signal: AbortSignal;
  work(listener: AnswerListener): Promise<Answer>;
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
 * per token) and to disk (SAVE_EVERY_MS), passes on what the engine is doing (at once when its stage
 * changes), then records how it ended. A stop keeps the text so far.
 */
export async function streamAnswer(job: StreamJob): Promise<void> {
  let text = '';
  let progress: Progress | undefined;
  let lastEmit = 0;
  let lastSave = Date.now();
  let saving: Promise<unknown> = Promise.resolve();
  const emitStreaming = (now: number) => {
    lastEmit = now;
    job.emit({ text, status: 'streaming', ...(progress && { progress }) });
  };
  let settled = false; // late text or progress (another request's) must not reopen a finished answer
  const onText = (delta: string) => {
    if (settled) return;
    text += delta;
    const now = Date.now();
    if (now - lastEmit >= EMIT_EVERY_MS) emitStreaming(now);
    if (now - lastSave >= SAVE_EVERY_MS) {
      lastSave = now;
      const snapshot = text;
      saving = saving.then(() => job.save(snapshot)).catch(() => undefined);
    }
  };
  const onProgress = (next: Progress) => {
    if (settled) return;
    const newStage = stageOf(next) !== stageOf(progress);
    progress = next;
    const now = Date.now();
    if (newStage || now - lastEmit >= EMIT_EVERY_MS) emitStreaming(now);
  };

  let update: AnswerUpdate;
  let result: Answer | undefined;
  try {
    result = await job.work({ onText, onProgress });
    update = { text: result.text, status: 'done', stats: result.stats };
  } catch (err) {
    update = job.signal.aborted
      ? { text, status: 'interrupted' }
      : isCrash(err)
        ? { text, status: 'interrupted', error: ENGINE_CRASHED_NOTE } // keep what it said; the host restarts the engine
        : { text, status: 'error', error: (err as Error).message };
  }
  settled = true;
  await saving;
  const { status, text: finalText, stats, error } = update;
  try {
    const traceId = await job.finish({ status: status as 'done' | 'interrupted' | 'error', text: finalText, stats, error }, result);
    job.emit({ ...update, ...(traceId && { traceId }) });
  } catch (err) {
    job.emit({ text: finalText, status: 'error', error: `The answer could not be saved: ${(err as Error).message}` });
  }
}

/** A progress message names its stage before any colon ("Reading the prompt (prefill): layer 3 of 32"). */
function stageOf(progress: Progress | undefined): string | undefined {
  return progress?.message?.split(':')[0];
}

function isCrash(err: unknown): boolean {
  return err instanceof CodedError && err.code === 'engine-crashed';
}
