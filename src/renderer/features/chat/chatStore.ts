import { useSyncExternalStore } from 'react';
import type { AnswerVersion, Conversation, ConversationSummary, Message, StoredImage } from '../../../shared/conversation.js';
import type { ChatAnswerEvent } from '../../../shared/ipc-features.js';
import type { ConversationSettings } from '../../../shared/settings.js';
import type { Client } from '../../client/client.js';
import { useClient } from '../../shell/client-context.js';
import { addImage, callOrThrow, perClient } from '../common/calls.js';
import type { Attachment } from './Composer.js';

export interface ChatState {
  conversations: ConversationSummary[];
  query: string;
  active?: Conversation;
  /** The image pending for the next question (LLaVA-1.5 takes one per question). */
  attachments: Attachment[];
  /** What the engine is doing for each streaming answer (by version id), until its text arrives. */
  progress: Record<string, string>;
  /** Every image seen so far, for thumbnails and "what the model sees". */
  images: Record<string, Attachment>;
  /** The last failed action, shown inline. */
  error?: string;
}

/**
 * The chat's state and actions, shared by the sidebar list and the chat view. Answers stream in as
 * `chat.answer` events and patch the open conversation in place; everything else is a call to main.
 */
export class ChatStore {
  private state: ChatState = { conversations: [], query: '', attachments: [], images: {}, progress: {} };
  private readonly listeners = new Set<() => void>();
  /** The newest streamed state of each answer: a conversation loaded while it streams may be older. */
  private readonly streamed = new Map<string, ChatAnswerEvent>();

  constructor(private readonly client: Client) {
    client.on('chat.answer', (event) => this.onAnswer(event));
    // A comparison side that closes was saved in its conversation: show it there, as stored.
    client.on('compare.answer', (event) => {
      if (event.status !== 'streaming' && this.state.active) void this.reopen(this.state.active.id);
    });
    void this.refresh();
  }

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
  snapshot = () => this.state;

  get busy(): boolean {
    return this.state.active?.messages.some((m) => m.role === 'assistant' && m.versions.some((v) => v.status === 'streaming')) ?? false;
  }

  async refresh(): Promise<void> {
    await this.attempt(async () =>
      this.set({ conversations: await callOrThrow(this.client, 'conversations.list', { query: this.state.query }) }),
    );
  }

  search(query: string): void {
    this.set({ query });
    void this.refresh();
  }

  async select(id: string): Promise<void> {
    await this.attempt(async () => this.open(await callOrThrow(this.client, 'conversations.get', { id })));
  }

  newChat(): void {
    this.set({ active: undefined, attachments: [], error: undefined });
  }

  async rename(id: string, title: string): Promise<void> {
    await this.attempt(async () => {
      const renamed = await callOrThrow(this.client, 'conversations.rename', { id, title });
      if (this.state.active?.id === id) this.set({ active: renamed });
      await this.refresh();
    });
  }

  async remove(id: string): Promise<void> {
    await this.attempt(async () => {
      await callOrThrow(this.client, 'conversations.delete', { id });
      if (this.state.active?.id === id) this.newChat();
      await this.refresh();
    });
  }

  /** Drop, paste and picker all land here; the image replaces any pending one. A rejection throws so the composer shows it. */
  async attach(file: File): Promise<void> {
    this.use(await addImage(this.client, file));
  }

  /** An image already in the store (a sample) as the pending one. */
  use(attachment: Attachment): void {
    this.set({ images: { ...this.state.images, [attachment.image.id]: attachment }, attachments: [attachment] });
  }

  detach(imageId: string): void {
    this.set({ attachments: this.state.attachments.filter((a) => a.image.id !== imageId) });
  }

  /** Asks in the open conversation, or starts one (main creates it only if it takes the question). True once sent. */
  async send(text: string): Promise<boolean> {
    let sent = false;
    await this.attempt(async () => {
      const images = this.state.attachments.map((a) => a.image.id);
      const { conversationId } = await callOrThrow(this.client, 'chat.send', { conversationId: this.state.active?.id, text, images });
      sent = true;
      this.set({ attachments: [] });
      this.open(await callOrThrow(this.client, 'conversations.get', { id: conversationId }));
      await this.refresh();
    });
    return sent;
  }

  async regenerate(messageId: string): Promise<void> {
    const id = this.state.active?.id;
    if (!id) return;
    await this.attempt(async () => {
      await callOrThrow(this.client, 'chat.regenerate', { conversationId: id, messageId });
      this.open(await callOrThrow(this.client, 'conversations.get', { id }));
    });
  }

  async stop(): Promise<void> {
    const id = this.state.active?.id;
    if (id) await this.attempt(() => callOrThrow(this.client, 'chat.stop', { conversationId: id }));
  }

  /** Asks an earlier question again, edited, in a branch, and opens the branch. */
  async edit(messageId: string, text: string): Promise<void> {
    const id = this.state.active?.id;
    if (!id) return;
    await this.attempt(async () => {
      const { conversationId } = await callOrThrow(this.client, 'chat.edit', { conversationId: id, messageId, text });
      this.open(await callOrThrow(this.client, 'conversations.get', { id: conversationId }));
      await this.refresh();
    });
  }

  /** Adds the conversation in an exported file (Export JSON) and opens it. */
  async importFile(file: File): Promise<void> {
    await this.attempt(async () => {
      this.open(await callOrThrow(this.client, 'conversations.import', { text: await file.text() }));
      await this.refresh();
    });
  }

  /** The open conversation's own model, method, system prompt and sampling. */
  async setSettings(settings: ConversationSettings): Promise<void> {
    const id = this.state.active?.id;
    if (id) await this.attempt(async () => this.open(await callOrThrow(this.client, 'conversations.setSettings', { id, settings })));
  }

  async selectVersion(messageId: string, index: number): Promise<void> {
    const id = this.state.active?.id;
    if (id)
      await this.attempt(async () => this.open(await callOrThrow(this.client, 'conversations.selectVersion', { id, messageId, index })));
  }

  imageInfo(): Record<string, StoredImage> {
    return Object.fromEntries(Object.entries(this.state.images).map(([id, a]) => [id, a.image]));
  }

  private open(conversation: Conversation): void {
    this.set({ active: withStreamed(conversation, this.streamed), error: undefined });
    void this.loadImages(conversation.messages);
  }

  private async loadImages(messages: Message[]): Promise<void> {
    const missing = messages.flatMap((m) => (m.role === 'assistant' ? [] : m.images)).filter((id) => !this.state.images[id]);
    for (const id of new Set(missing)) {
      const result = await this.client.call('images.get', { id });
      if (result.ok)
        this.set({ images: { ...this.state.images, [id]: { image: result.value.image, thumbnailUrl: result.value.thumbnail } } });
    }
  }

  private onAnswer(event: ChatAnswerEvent): void {
    this.streamed.set(event.versionId, event);
    const { [event.versionId]: _old, ...progress } = this.state.progress;
    if (event.status === 'streaming' && event.progress?.message) progress[event.versionId] = event.progress.message;
    const active = this.state.active;
    this.set({ progress, ...(active?.id === event.conversationId && { active: withStreamed(active, this.streamed) }) });
    if (event.status === 'streaming') return;
    void this.refresh();
    // What main recorded when the answer closed (the model that answered, the trace) comes with the stored conversation.
    if (active?.id === event.conversationId) void this.reopen(event.conversationId);
  }

  private async reopen(id: string): Promise<void> {
    const conversation = await callOrThrow(this.client, 'conversations.get', { id }).catch(() => undefined);
    if (conversation && this.state.active?.id === id) this.open(conversation);
  }

  private async attempt<T>(work: () => Promise<T>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.set({ error: (err as Error).message });
    }
  }

  private set(patch: Partial<ChatState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }
}

/** The conversation with every still-streaming answer brought up to its newest streamed state. */
function withStreamed(conversation: Conversation, streamed: Map<string, ChatAnswerEvent>): Conversation {
  const patch = (v: AnswerVersion): AnswerVersion => {
    const event = streamed.get(v.id);
    if (!event || (v.status !== 'streaming' && event.status === 'streaming')) return v;
    return {
      ...v,
      text: event.text,
      status: event.status,
      stats: event.stats ?? v.stats,
      traceId: event.traceId ?? v.traceId,
      error: event.error ?? v.error,
    };
  };
  const messages = conversation.messages.map((m) => (m.role === 'assistant' ? { ...m, versions: m.versions.map(patch) } : m));
  return { ...conversation, messages };
}

const chatStoreFor = perClient((client) => new ChatStore(client));

/** The chat store of the current client, and its state (re-rendering on every change). */
export function useChat(): { store: ChatStore; state: ChatState } {
  const store = chatStoreFor(useClient());
  const state = useSyncExternalStore(store.subscribe, store.snapshot);
  return { store, state };
}
