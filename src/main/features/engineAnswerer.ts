import type { AnswerStats } from '../../shared/conversation.js';
import type { Trace } from '../../shared/trace.js';
import type { AskRequest } from '../../shared/ipc-features.js';
import type { Answerer } from './answerer.js';

/** What the answerer needs of the engine host: one call with streamed events and cancellation. */
export interface AskingEngine {
  ask(request: AskRequest, options: { signal: AbortSignal; onText(delta: string): void }): Promise<{ text: string; stats: AnswerStats; trace?: Trace }>;
}

/** Answers in the engine process: the remembered settings become the engine's `chat.ask` request. */
export function engineAnswerer(engine: AskingEngine): Answerer {
  return {
    answer({ imagePath, turns, method, settings }, onText, signal) {
      const { temperature, topP, seed, maxTokens } = settings.sampling;
      return engine.ask(
        { model: settings.modelId, imagePath, turns, method, sampling: { temperature, topP, seed }, maxTokens, ep: settings.provider },
        { signal, onText },
      );
    },
  };
}
