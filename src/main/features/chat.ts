import { currentVersion, type Conversation } from '../../shared/conversation.js';
import type { Answer, ChatAnswerEvent, ChatTurn } from '../../shared/ipc-features.js';
import { CodedError } from '../../shared/result.js';
import { chatMethod, conversationDefaults, settingsFor } from '../../shared/settings.js';
import type { AnswerTarget, Storage } from '../storage/index.js';
import { answerSettings, type Answerer, type AnswerListener } from './answerer.js';
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

  /**
   * Adds the user's turn and starts its answer. Without a conversation id it opens a new conversation,
   * only once the turn is known to be acceptable, so a refused question leaves nothing behind.
   */
  async send(conversationId: string | undefined, text: string, images: string[]): Promise<AnswerTarget> {
    if (conversationId) this.refuseIfBusy(conversationId);
    if (images.length > IMAGES_PER_TURN)
      throw new CodedError('invalid-request', `LLaVA-1.5 answers about one image per question; this one has ${images.length}.`);
    if (!text.trim() && images.length === 0) throw new CodedError('invalid-request', 'Type a question or attach an image.');
    for (const id of images) await this.storage.images.path(id); // only images the store accepted
    // A new conversation takes the global settings as they are now: later changes to either leave the other alone.
    const id =
      conversationId ?? (await this.storage.conversations.create(undefined, conversationDefaults(await this.storage.settings.load()))).id;
    await this.storage.conversations.addUserMessage(id, text, images);
    return this.start(id);
  }

  /** Asks the question `messageId` again as `text`, with the same images, in a branch (a new conversation). */
  async edit(conversationId: string, messageId: string, text: string): Promise<AnswerTarget> {
    const original = (await this.storage.conversations.get(conversationId)).messages.find((m) => m.id === messageId);
    if (original?.role !== 'user') throw new CodedError('not-found', `no question ${messageId}`);
    if (!text.trim() && original.images.length === 0) throw new CodedError('invalid-request', 'Type a question or attach an image.');
    const branch = await this.storage.conversations.branch(conversationId, messageId);
    await this.storage.conversations.addUserMessage(branch.id, text, original.images);
    return this.start(branch.id);
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
    const conversation = await this.storage.conversations.get(conversationId);
    const settings = settingsFor(await this.storage.settings.load(), conversation.settings);
    const method = chatMethod(settings);
    const prompt = promptFor(conversation, regenerate);
    const imagePath = prompt.imageId ? await this.storage.images.path(prompt.imageId) : undefined;
    const target = await this.storage.conversations.startAnswer(conversationId, {
      regenerate,
      method: settings.method,
      modelId: settings.modelId,
    });
    const controller = this.running.start(conversationId);
    void this.run(target, controller, (listener) =>
      this.answerer.answer({ ...answerSettings(settings), image: imagePath, turns: prompt.turns, method }, listener, controller.signal),
    );
    return target;
  }

  private async run(target: AnswerTarget, controller: AbortController, work: (listener: AnswerListener) => Promise<Answer>): Promise<void> {
    const conversations = this.storage.conversations;
    try {
      await streamAnswer({
        signal: controller.signal,
        work,
        emit: (update) => this.emit({ ...target, ...update }),
        save: (text) => conversations.saveAnswerText(target, text),
        finish: async (outcome, result) => {
          const traceId = result ? await this.storage.traces.save(result.trace) : undefined;
          await conversations.finishAnswer(target, { ...outcome, traceId, modelId: result?.trace.model.id });
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

/** LLaVA-1.5 takes one image per prompt; a later image replaces the earlier one for the turns after it. */
export const IMAGES_PER_TURN = 1;

/**
 * The turns the model answers from: the conversation's system prompt, if any, then everything before the
 * answer (the current version of each earlier reply), with the image on the latest user turn that has one,
 * or none for a text-only conversation.
 */
export function promptFor(conversation: Conversation, regenerate?: string): { turns: ChatTurn[]; imageId?: string } {
  const end = regenerate ? conversation.messages.findIndex((m) => m.id === regenerate) : conversation.messages.length;
  if (end < 0) throw new CodedError('not-found', `no message ${regenerate}`);
  const history = conversation.messages.slice(0, end);
  const imageTurn = history.findLastIndex((m) => m.role === 'user' && m.images.length > 0);
  const imageMessage = history[imageTurn];
  const imageId = imageMessage?.role === 'user' ? imageMessage.images.at(-1) : undefined;
  const turns = history.flatMap((m, i): ChatTurn[] => {
    if (m.role === 'user') return [{ role: 'user', text: m.text, ...(i === imageTurn && { image: true }) }];
    if (m.role === 'comparison') return []; // a record of compare mode, not part of the chat
    const version = currentVersion(m);
    return version.text ? [{ role: 'assistant', text: version.text }] : [];
  });
  const system = conversation.settings?.systemPrompt.trim();
  return { turns: system ? [{ role: 'system', text: system }, ...turns] : turns, imageId };
}
