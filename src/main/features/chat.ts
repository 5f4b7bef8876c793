import { currentVersion, type Conversation } from '../../shared/conversation.js';
import type { Answer, ChatAnswerEvent, ChatTurn } from '../../shared/ipc-features.js';
import { CodedError } from '../../shared/result.js';
import { chatMethod } from '../../shared/settings.js';
import type { AnswerTarget, Storage } from '../storage/index.js';
import { answerSettings, type Answerer } from './answerer.js';
import { streamAnswer } from './stream.js';
import { RunningAnswers } from './running.js';

/**
 * Chat answers: each one is opened in the conversation file, streamed to the renderer as events,
 * saved as it grows (so a crash keeps the text so far) and closed as done, interrupted or error.
 * One answer per conversation at a time; `stop` aborts it.
 */
export class ChatService {
  private readonly running = new RunningAnswers();

  constructor(
    private readonly storage: Storage,
    private readonly answerer: Answerer,
    private readonly emit: (event: ChatAnswerEvent) => void,
  ) {}

  async send(conversationId: string, text: string, images: string[]): Promise<AnswerTarget> {
    this.refuseIfBusy(conversationId);
    for (const id of images) await this.storage.images.path(id); // only images the store accepted
    await this.storage.conversations.addUserMessage(conversationId, text, images);
    return this.start(conversationId);
  }

  async regenerate(conversationId: string, messageId: string): Promise<AnswerTarget> {
    this.refuseIfBusy(conversationId);
    return this.start(conversationId, messageId);
  }

  stop(conversationId: string): boolean {
    return this.running.stop(conversationId);
  }

  /** Stops every answer (quit): each is saved as interrupted. */
  stopAll(): void {
    this.running.stopAll();
  }

  private async start(conversationId: string, regenerate?: string): Promise<AnswerTarget> {
    const settings = await this.storage.settings.load();
    const method = chatMethod(settings);
    const conversation = await this.storage.conversations.get(conversationId);
    const prompt = promptFor(conversation, regenerate);
    const imagePath = await this.storage.images.path(prompt.imageId);
    const target = await this.storage.conversations.startAnswer(conversationId, {
      regenerate,
      method: settings.method,
      modelId: settings.modelId,
    });
    const controller = this.running.start(conversationId);
    void this.run(target, controller, (onText) =>
      this.answerer.answer({ ...answerSettings(settings), image: imagePath, turns: prompt.turns, method }, onText, controller.signal),
    );
    return target;
  }

  private async run(
    target: AnswerTarget,
    controller: AbortController,
    work: (onText: (delta: string) => void) => Promise<Answer>,
  ): Promise<void> {
    const conversations = this.storage.conversations;
    try {
      await streamAnswer({
        signal: controller.signal,
        work,
        emit: (update) => this.emit({ ...target, ...update }),
        save: (text) => conversations.saveAnswerText(target, text),
        finish: async (outcome, result) => {
          const traceId = result ? await this.storage.traces.save(result.trace) : undefined;
          await conversations.finishAnswer(target, { ...outcome, traceId });
          return traceId;
        },
      });
    } finally {
      this.running.finish(target.conversationId, controller);
    }
  }

  private refuseIfBusy(conversationId: string): void {
    if (this.running.has(conversationId)) throw new CodedError('invalid-request', 'This conversation is still answering; stop it first.');
  }
}

/**
 * The turns the model answers from: everything before the answer (the current version of each earlier
 * reply), with the image on the latest user turn that has one. LLaVA-1.5 takes one image per prompt.
 */
export function promptFor(conversation: Conversation, regenerate?: string): { turns: ChatTurn[]; imageId: string } {
  const end = regenerate ? conversation.messages.findIndex((m) => m.id === regenerate) : conversation.messages.length;
  if (end < 0) throw new CodedError('not-found', `no message ${regenerate}`);
  const history = conversation.messages.slice(0, end);
  const imageTurn = history.findLastIndex((m) => m.role === 'user' && m.images.length > 0);
  if (imageTurn < 0) throw new CodedError('invalid-request', 'Attach an image first: the model answers questions about an image.');
  const imageMessage = history[imageTurn];
  const imageId = imageMessage.role === 'user' ? imageMessage.images.at(-1)! : '';
  const turns = history.flatMap((m, i): ChatTurn[] => {
    if (m.role === 'user') return [{ role: 'user', text: m.text, ...(i === imageTurn && { image: true }) }];
    const version = currentVersion(m);
    return version.text ? [{ role: 'assistant', text: version.text }] : [];
  });
  return { turns, imageId };
}
