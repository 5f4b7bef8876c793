import type { Answer, AskRequest, CompareRequest } from '../../shared/ipc-features.js';
import type { Progress } from '../../shared/progress.js';
import { maxPixelsOf, type AppSettings } from '../../shared/settings.js';

/** What an answer streams while it is made: each newly settled piece of text, and what the engine is busy with. */
export interface AnswerListener {
  onText(delta: string): void;
  onProgress?(progress: Progress): void;
}

/** The same for a compare: text per method (`branch`, index into `methods`), and each answer as soon as it is complete. */
export interface CompareListener {
  onText(branch: number, delta: string): void;
  onProgress?(progress: Progress): void;
  onAnswer?(branch: number, answer: Answer): void;
}

/**
 * How the feature handlers get an answer: the engine process behind the EngineHost in the app (its
 * `chat.ask` and `chat.compare` calls, app-core.ts), any implementation of the same contract elsewhere.
 * The request is the engine's own `AskRequest`, passed on unchanged. Aborting `signal` stops generation
 * between decode steps and rejects. `compare` is one request, so the engine can compute the methods'
 * common early layers once; it decodes their answers side by side.
 */
export interface Answerer {
  answer(request: AskRequest, listener: AnswerListener, signal: AbortSignal): Promise<Answer>;
  /** One answer per method, in order. */
  compare(request: CompareRequest, listener: CompareListener, signal: AbortSignal): Promise<Answer[]>;
}

/** What the remembered settings say about every answer: the model, the provider, sampling and the visual-token budget. */
export function answerSettings(settings: AppSettings): Pick<AskRequest, 'model' | 'ep' | 'sampling' | 'maxTokens' | 'maxPixels'> {
  const { temperature, topP, seed, maxTokens } = settings.sampling;
  const maxPixels = maxPixelsOf(settings);
  return {
    model: settings.modelId,
    ep: settings.provider,
    sampling: { temperature, topP, seed },
    maxTokens,
    ...(maxPixels ? { maxPixels } : {}),
  };
}
