import { randomUUID } from 'node:crypto';
import type { Answer, AskRequest, CompareAnswerEvent, CompareSide } from '../../shared/ipc-features.js';
import type { MethodSpec } from '../../shared/pruning.js';
import { parseMethod } from '../../shared/pruning.js';
import { conversationDefaults, settingsFor } from '../../shared/settings.js';
import type { Storage } from '../storage/index.js';
import { answerSettings, type Answerer, type AnswerListener, type CompareListener } from './answerer.js';
import { RunningAnswers } from './running.js';
import { streamAnswer } from './stream.js';

const SIDES = ['left', 'right'] as const satisfies readonly CompareSide[];

/**
 * Compare runs: one question about one image, answered with two methods in one engine request (the
 * engine shares their prefill up to the first prune, then decodes both answers side by side), or by two
 * models (one request each, in turn: two models need not fit in memory together), each
 * streamed as `compare.answer` events for its side and finished as soon as its own answer is complete.
 * A stop keeps both partial answers. The run is kept in its conversation as a comparison message (both
 * answers, their methods, stats and traces), so it survives a tab switch and a restart and opens in the inspector.
 */
export class CompareService {
  private readonly running = new RunningAnswers();

  constructor(
    private readonly storage: Storage,
    private readonly answerer: Answerer,
    private readonly emit: (event: CompareAnswerEvent) => void,
  ) {}

  async run(
    text: string,
    imageId: string,
    methods: Record<CompareSide, string>,
    conversationId?: string,
    models: Partial<Record<CompareSide, string>> = {},
  ): Promise<{ runId: string; conversationId: string; messageId: string }> {
    const specs = { left: parseMethod(methods.left), right: parseMethod(methods.right) };
    const imagePath = await this.storage.images.path(imageId);
    const global = await this.storage.settings.load();
    const { conversations } = this.storage;
    // Kept in the conversation it was asked in (a new one when none is open), answered with its model and sampling.
    const conversation = conversationId
      ? await conversations.get(conversationId)
      : await conversations.create(undefined, conversationDefaults(global));
    const settings = settingsFor(global, conversation.settings);
    const messageId = await conversations.addComparison(conversation.id, text, [imageId], methods);
    const runId = randomUUID();
    const controller = this.running.start(runId);
    // Each side's streamAnswer registers where its text goes and how its answer arrives.
    const panes: { listener?: AnswerListener; answered?: (answer: Answer) => void }[] = SIDES.map(() => ({}));
    const request = { ...answerSettings(settings), image: imagePath, turns: [{ role: 'user' as const, text, image: true }] };
    const listener: CompareListener = {
      onText: (branch, delta) => panes[branch]?.listener?.onText(delta),
      onProgress: (progress) => panes.forEach((pane) => pane.listener?.onProgress?.(progress)),
      onAnswer: (branch, answer) => panes[branch]?.answered?.(answer),
    };
    const [leftModel, rightModel] = SIDES.map((side) => models[side] ?? request.model);
    const answers =
      leftModel === rightModel
        ? this.answerer.compare({ ...request, methods: SIDES.map((side) => specs[side]) }, listener, controller.signal)
        : this.eachModel(request, { left: leftModel, right: rightModel }, specs, (branch) => panes[branch], controller.signal);
    const streams = SIDES.map((side, branch) =>
      streamAnswer({
        signal: controller.signal,
        work: (listener) =>
          new Promise<Answer>((resolve, reject) => {
            panes[branch] = { listener, answered: resolve };
            answers.then((results) => resolve(results[branch]), reject); // a side already answered stays done
          }),
        emit: (update) => this.emit({ runId, side, ...update }),
        save: async () => undefined, // the text is kept when the side finishes
        finish: async (outcome, result) => {
          const traceId = result ? await this.storage.traces.save(result.trace) : undefined;
          await conversations.finishComparedAnswer(conversation.id, messageId, side, {
            ...outcome,
            traceId,
            modelId: result?.trace.model.id,
          });
          return traceId;
        },
      }),
    );
    void Promise.all(streams).finally(() => this.running.finish(runId, controller));
    return { runId, conversationId: conversation.id, messageId };
  }

  /** Two models: each side is its own request, left then right, streamed (text and progress) to its own pane. */
  private async eachModel(
    request: Omit<AskRequest, 'method'>,
    models: Record<CompareSide, string | undefined>,
    specs: Record<CompareSide, MethodSpec>,
    pane: (branch: number) => { listener?: AnswerListener; answered?: (answer: Answer) => void } | undefined,
    signal: AbortSignal,
  ): Promise<Answer[]> {
    const answers: Answer[] = [];
    for (const [branch, side] of SIDES.entries()) {
      const answer = await this.answerer.answer(
        { ...request, model: models[side], method: specs[side] },
        { onText: (delta) => pane(branch)?.listener?.onText(delta), onProgress: (p) => pane(branch)?.listener?.onProgress?.(p) },
        signal,
      );
      pane(branch)?.answered?.(answer);
      answers.push(answer);
    }
    return answers;
  }

  stop(runId: string): boolean {
    return this.running.stop(runId);
  }

  stopAll(): void {
    this.running.stopAll();
  }
}
