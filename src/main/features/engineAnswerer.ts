import type { AnswerStats } from '../../shared/conversation.js';
import type { Trace } from '../../shared/trace.js';
import type { AskRequest, CompareRequest } from '../../shared/ipc-features.js';
import type { AppSettings } from '../../shared/settings.js';
import type { Answerer, AnswerListener, CompareListener, PromptTurn } from './answerer.js';

type EngineAnswer = { text: string; stats: AnswerStats; trace?: Trace };

/** What the answerer needs of the engine host: two calls with streamed events and cancellation. */
export interface AskingEngine {
  ask(request: AskRequest, options: { signal: AbortSignal } & AnswerListener): Promise<EngineAnswer>;
  compare(request: CompareRequest, options: { signal: AbortSignal } & CompareListener): Promise<{ answers: EngineAnswer[] }>;
}

/** Answers in the engine process: the remembered settings become the engine's `chat.ask` / `chat.compare` request. */
export function engineAnswerer(engine: AskingEngine): Answerer {
  return {
    answer({ method, ...rest }, listener, signal) {
      return engine.ask({ ...fromSettings(rest), method }, { signal, ...listener });
    },
    async compare({ methods, ...rest }, listener, signal) {
      return (await engine.compare({ ...fromSettings(rest), methods }, { signal, ...listener })).answers;
    },
  };
}

function fromSettings({
  imagePath,
  turns,
  settings,
}: {
  imagePath?: string;
  turns: PromptTurn[];
  settings: AppSettings;
}): Omit<AskRequest, 'method'> {
  const { temperature, topP, seed, maxTokens } = settings.sampling;
  return { model: settings.modelId, imagePath, turns, sampling: { temperature, topP, seed }, maxTokens, ep: settings.provider };
}
