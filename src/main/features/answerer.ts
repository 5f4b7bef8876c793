import type { Answer, AskRequest, CompareRequest } from '../../shared/ipc-features.js';
import type { AppSettings } from '../../shared/settings.js';

/**
 * How the feature handlers get an answer: the engine process behind the EngineHost in the app (its
 * `chat.ask` and `chat.compare` calls, app-core.ts), any implementation of the same contract elsewhere.
 * The request is the engine's own `AskRequest`, passed on unchanged. `onText` receives each newly
 * settled piece of text; aborting `signal` stops generation between decode steps and rejects.
 * `compare` is one request, so the engine can compute the methods' common early layers once.
 */
export interface Answerer {
  answer(request: AskRequest, onText: (delta: string) => void, signal: AbortSignal): Promise<Answer>;
  /** One answer per method, in order; `onText` says whose text it is (index into `methods`). */
  compare(request: CompareRequest, onText: (branch: number, delta: string) => void, signal: AbortSignal): Promise<Answer[]>;
}

/** What the remembered settings say about every answer: the model, the provider and sampling. */
export function answerSettings(settings: AppSettings): Pick<AskRequest, 'model' | 'ep' | 'sampling' | 'maxTokens'> {
  const { temperature, topP, seed, maxTokens } = settings.sampling;
  return { model: settings.modelId, ep: settings.provider, sampling: { temperature, topP, seed }, maxTokens };
}
