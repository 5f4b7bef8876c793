import { randomUUID } from 'node:crypto';
import type { CompareAnswerEvent, CompareSide } from '../../shared/ipc-features.js';
import { parseMethod } from '../../shared/pruning.js';
import type { Storage } from '../storage/index.js';
import { answerSettings, type Answerer } from './answerer.js';
import { RunningAnswers } from './running.js';
import { streamAnswer } from './stream.js';

const SIDES = ['left', 'right'] as const satisfies readonly CompareSide[];

/**
 * Compare runs: one question about one image, answered with two methods in one engine request (the
 * engine shares their prefill up to the first prune, then decodes one answer after the other), each
 * streamed as `compare.answer` events for its side. Their traces are stored, so either answer opens in
 * the inspector.
 */
export class CompareService {
  private readonly running = new RunningAnswers();

  constructor(
    private readonly storage: Storage,
    private readonly answerer: Answerer,
    private readonly emit: (event: CompareAnswerEvent) => void,
  ) {}

  async run(text: string, imageId: string, methods: Record<CompareSide, string>): Promise<string> {
    const specs = { left: parseMethod(methods.left), right: parseMethod(methods.right) };
    const imagePath = await this.storage.images.path(imageId);
    const settings = await this.storage.settings.load();
    const runId = randomUUID();
    const controller = this.running.start(runId);
    // One engine request for both sides (their common early layers are computed once); each side still
    // streams and finishes as its own answer, left before right, reading its part of the shared result.
    const sinks: ((delta: string) => void)[] = []; // each side's streamAnswer registers its own
    const answers = this.answerer.compare(
      {
        ...answerSettings(settings),
        image: imagePath,
        turns: [{ role: 'user', text, image: true }],
        methods: SIDES.map((side) => specs[side]),
      },
      (branch, delta) => sinks[branch]?.(delta),
      controller.signal,
    );
    let previous: Promise<void> = Promise.resolve();
    for (const [branch, side] of SIDES.entries()) {
      const finishedBefore = previous;
      previous = streamAnswer({
        signal: controller.signal,
        work: async (onText) => {
          sinks[branch] = onText;
          const results = await answers;
          await finishedBefore;
          return results[branch];
        },
        emit: (update) => this.emit({ runId, side, ...update }),
        save: async () => undefined, // compare runs are not kept as conversations
        finish: async (_outcome, result) => (result ? this.storage.traces.save(result.trace) : undefined),
      });
    }
    void previous.finally(() => this.running.finish(runId, controller));
    return runId;
  }

  stop(runId: string): boolean {
    return this.running.stop(runId);
  }

  stopAll(): void {
    this.running.stopAll();
  }
}
