import type { AnswerStats } from '../../shared/conversation.js';
import type { Progress } from '../../shared/ipc.js';
import type { MethodSpec } from '../../shared/pruning.js';
import type { AppSettings } from '../../shared/settings.js';
import type { Trace } from '../../shared/trace.js';

/** One conversation turn as the engine's chat template takes it (src/engine/text/chat.ts ChatTurn). */
export interface PromptTurn {
  role: 'user' | 'assistant';
  text: string;
  /** The turn the image belongs to (at most one). */
  image?: boolean;
}

export interface AnswerRequest {
  /** The stored image file (main's image store); absent for a text-only conversation. */
  imagePath?: string;
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

/** What an answer streams while it is made: each newly settled piece of text, and what the engine is busy with. */
export interface AnswerListener {
  onText(delta: string): void;
  onProgress?(progress: Progress): void;
}

/** The same for a compare: text per method (`branch`, index into `methods`), and each answer as soon as it is complete. */
export interface CompareListener {
  onText(branch: number, delta: string): void;
  onProgress?(progress: Progress): void;
  onAnswer?(branch: number, result: AnswerResult): void;
}

/**
 * How the feature handlers get an answer: the engine process behind the EngineHost in the app, any
 * implementation of the same contract elsewhere. Aborting `signal` stops generation between decode
 * steps and rejects. `compare` is one request, so the engine can compute the methods' common early
 * layers once; it decodes their answers side by side.
 */
export interface Answerer {
  answer(request: AnswerRequest, listener: AnswerListener, signal: AbortSignal): Promise<AnswerResult>;
  /** One answer per method, in order. */
  compare(request: CompareAnswerRequest, listener: CompareListener, signal: AbortSignal): Promise<AnswerResult[]>;
}
