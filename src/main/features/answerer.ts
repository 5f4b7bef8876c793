import type { AnswerStats } from '../../shared/conversation.js';
import type { MethodSpec } from '../../shared/pruning.js';
import type { AppSettings } from '../../shared/settings.js';
import type { Trace } from '../../shared/trace.js';

/** One conversation turn as the engine's chat template takes it (src/engine/text/chat.ts ChatTurn). */
export interface PromptTurn {
  role: 'user' | 'assistant';
  text: string;
  /** The turn the image belongs to (exactly one). */
  image?: boolean;
}

export interface AnswerRequest {
  /** The stored image file (main's image store). */
  imagePath: string;
  turns: PromptTurn[];
  method: MethodSpec;
  /** Model, provider and sampling come from the remembered settings. */
  settings: AppSettings;
}

export interface AnswerResult {
  text: string;
  stats: AnswerStats;
  trace?: Trace;
}

/** One question answered with several methods (compare). */
export interface CompareAnswerRequest extends Omit<AnswerRequest, 'method'> {
  methods: MethodSpec[];
}

/**
 * How the feature handlers get an answer: the engine process behind the EngineHost in the app, any
 * implementation of the same contract elsewhere. `onText` receives each newly settled piece of text;
 * aborting `signal` stops generation between decode steps and rejects. `compare` is one request, so
 * the engine can compute the methods' common early layers once.
 */
export interface Answerer {
  answer(request: AnswerRequest, onText: (delta: string) => void, signal: AbortSignal): Promise<AnswerResult>;
  /** One answer per method, in order; `onText` says whose text it is (index into `methods`). */
  compare(request: CompareAnswerRequest, onText: (branch: number, delta: string) => void, signal: AbortSignal): Promise<AnswerResult[]>;
}
