import { randomUUID } from 'node:crypto';
import type { CompareAnswerEvent, CompareSide } from '../../shared/ipc-features.js';
import { parseMethod } from '../../shared/pruning.js';
import type { Storage } from '../storage/index.js';
import type { Answerer } from './answerer.js';
import { streamAnswer } from './stream.js';

/**
 * Compare runs: one question about one image, answered with two methods one after the other (the
 * engine runs one inference at a time), each streamed as `compare.answer` events for its side.
 * Their traces are stored, so either answer opens in the inspector.
 */
export class CompareService {
  private readonly running = new Map<string, AbortController>();

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
    const controller = new AbortController();
    this.running.set(runId, controller);
    void (async () => {
      for (const side of ['left', 'right'] as const) {
        await streamAnswer({
          signal: controller.signal,
          work: (onText) => this.answerer.answer({ imagePath, turns: [{ role: 'user', text, image: true }], method: specs[side], settings }, onText, controller.signal),
          emit: (update) => this.emit({ runId, side, ...update }),
          save: async () => undefined, // compare runs are not kept as conversations
          finish: async (_outcome, result) => (result?.trace ? this.storage.traces.save(result.trace) : undefined),
        });
      }
      this.running.delete(runId);
    })();
    return runId;
  }

  stop(runId: string): boolean {
    const controller = this.running.get(runId);
    controller?.abort();
    return controller !== undefined;
  }

  stopAll(): void {
    for (const controller of this.running.values()) controller.abort();
  }
}
