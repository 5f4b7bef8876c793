import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { describeIssues } from '../../shared/result.js';
import type { ConversationSettings } from '../../shared/settings.js';

type CompareSideName = 'left' | 'right';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AnswerStats,
  type AnswerStatus,
  type AnswerVersion,
  type AssistantMessage,
  type ComparedAnswer,
  ComparisonMessage,
  Conversation,
  CONVERSATION_SCHEMA_VERSION,
  type ConversationSummary,
  Id,
  UserMessage,
} from '../../shared/conversation.js';
import { isTempFile, mkdirPrivate, writeFileAtomic } from './atomicFile.js';
import { StorageError } from './errors.js';
import { migrate } from './migrations.js';

export const DEFAULT_TITLE = 'New chat';
const TITLE_LENGTH = 60;

export interface AnswerTarget {
  conversationId: string;
  messageId: string;
  versionId: string;
}

export interface AnswerOutcome {
  status: Exclude<AnswerStatus, 'streaming'>;
  text: string;
  stats?: AnswerStats;
  traceId?: string;
  /** The model that answered (the engine says; an answer started without a chosen model used the first installed). */
  modelId?: string;
  error?: string;
}

/**
 * Conversations persisted as one JSON file each under `dir`. Every change is a read-modify-write of one
 * file, serialised per conversation and written atomically, so a crash at any point leaves the last
 * complete state on disk.
 */
export class ConversationStore {
  private readonly queues = new Map<string, Promise<unknown>>();
  private ready: Promise<unknown> | undefined;

  constructor(
    readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {}

  async list(): Promise<ConversationSummary[]> {
    return (await this.readAll()).map(summarize).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  /**
   * Conversations that contain every word of `query`, case-insensitively, in their title or their
   * messages (questions, every answer version, comparisons); a match inside a message comes with the
   * words around it.
   */
  async search(query: string): Promise<ConversationSummary[]> {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const found = (await this.readAll()).flatMap((c) => {
      const texts = [c.title, ...c.messages.flatMap(textsOf)];
      if (!words.every((w) => texts.some((t) => t.toLowerCase().includes(w)))) return [];
      const inTitle = words.every((w) => c.title.toLowerCase().includes(w));
      const match = inTitle ? undefined : snippet(texts.find((t) => t.toLowerCase().includes(words[0]))!, words[0]);
      return [{ ...summarize(c), ...(match && { match }) }];
    });
    return found.sort((a, b) => b.updatedAt - a.updatedAt);
  }

  /** Every readable conversation; an unreadable file is left where it is (nothing is lost) and simply skipped. */
  private async readAll(): Promise<Conversation[]> {
    await this.ensureDir();
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json') && !isTempFile(n));
    const all = await Promise.all(names.map((name) => this.read(name.slice(0, -'.json'.length)).catch(() => undefined)));
    return all.filter((c): c is Conversation => c !== undefined);
  }

  async create(title = DEFAULT_TITLE, settings?: ConversationSettings): Promise<Conversation> {
    await this.ensureDir();
    const at = this.now();
    const conversation: Conversation = {
      schemaVersion: CONVERSATION_SCHEMA_VERSION,
      id: randomUUID(),
      title: cleanTitle(title),
      createdAt: at,
      updatedAt: at,
      messages: [],
      ...(settings && { settings }),
    };
    await this.write(conversation);
    return conversation;
  }

  /**
   * Adds a conversation from elsewhere (an exported file) under a new id, checked and migrated as a file
   * of this store is; `retrace` gives each answer's trace id its id here.
   */
  async addImported(data: unknown, retrace: (traceId: string) => string | undefined): Promise<Conversation> {
    const parsed = Conversation.safeParse(migrate(data));
    if (!parsed.success) throw new StorageError('invalid', `not a conversation this app can read: ${describeIssues(parsed.error)}`);
    const conversation = { ...parsed.data, id: randomUUID(), updatedAt: this.now() };
    for (const answer of conversation.messages.flatMap(answersOf)) {
      if (answer.traceId) answer.traceId = retrace(answer.traceId);
      if (answer.traceId === undefined) delete answer.traceId;
      if (answer.status === 'streaming') answer.status = 'interrupted';
    }
    await this.ensureDir();
    await this.write(conversation);
    return conversation;
  }

  get(id: string): Promise<Conversation> {
    return this.serialized(id, () => this.read(id));
  }

  rename(id: string, title: string): Promise<Conversation> {
    const clean = cleanTitle(title);
    if (!clean) return Promise.reject(new StorageError('invalid', 'a title cannot be empty'));
    return this.update(id, (c) => {
      c.title = clean;
    });
  }

  setSettings(id: string, settings: ConversationSettings): Promise<Conversation> {
    return this.update(id, (c) => {
      c.settings = settings;
    });
  }

  delete(id: string): Promise<void> {
    return this.serialized(id, async () => {
      await this.read(id);
      await rm(this.file(id));
    });
  }

  /**
   * A new conversation with the turns of `id` before the question `messageId` (its settings too), marked
   * as branched from there; the edited question is then added by the caller. `id` is left as it is.
   */
  async branch(id: string, messageId: string): Promise<Conversation> {
    const source = await this.get(id);
    const at = source.messages.findIndex((m) => m.id === messageId);
    if (source.messages[at]?.role !== 'user') throw new StorageError('not-found', `no question ${messageId}`);
    const now = this.now();
    const conversation: Conversation = {
      ...structuredClone(source),
      id: randomUUID(),
      title: at === 0 ? DEFAULT_TITLE : `${source.title} (branch)`,
      createdAt: now,
      updatedAt: now,
      messages: structuredClone(source.messages.slice(0, at)),
      branchedFrom: { conversationId: id, messageId },
    };
    await this.write(conversation);
    return conversation;
  }

  /** Appends the user's turn; the first one also names a still-untitled conversation. */
  async addUserMessage(id: string, text: string, images: string[] = []): Promise<UserMessage> {
    const message = UserMessage.parse({ id: randomUUID(), role: 'user', text, images, createdAt: this.now() });
    await this.update(id, (c) => {
      if (c.title === DEFAULT_TITLE && !c.messages.some((m) => m.role === 'user')) c.title = cleanTitle(text) || DEFAULT_TITLE;
      c.messages.push(message);
    });
    return message;
  }

  /**
   * Opens a streaming answer: a new assistant message after the last turn, or, with `regenerate`, a new
   * version of that assistant message (the old versions are kept and the new one becomes current).
   */
  async startAnswer(id: string, options: { regenerate?: string; method?: string; modelId?: string } = {}): Promise<AnswerTarget> {
    const version: AnswerVersion = {
      id: randomUUID(),
      text: '',
      status: 'streaming',
      createdAt: this.now(),
      ...(options.method && { method: options.method }),
      ...(options.modelId && { modelId: options.modelId }),
    };
    let messageId = '';
    await this.update(id, (c) => {
      if (options.regenerate) {
        const message = findAssistant(c, options.regenerate);
        message.versions.push(version);
        message.current = message.versions.length - 1;
        messageId = message.id;
      } else {
        if (c.messages.at(-1)?.role !== 'user') throw new StorageError('invalid', 'an answer must follow a user message');
        messageId = randomUUID();
        c.messages.push({ id: messageId, role: 'assistant', versions: [version], current: 0 });
      }
    });
    return { conversationId: id, messageId, versionId: version.id };
  }

  /** Saves the text streamed so far, so that a crash keeps it. */
  saveAnswerText(target: AnswerTarget, text: string): Promise<Conversation> {
    return this.update(target.conversationId, (c) => {
      const version = findVersion(c, target);
      if (version.status === 'streaming') version.text = text;
    });
  }

  finishAnswer(target: AnswerTarget, outcome: AnswerOutcome): Promise<Conversation> {
    return this.update(target.conversationId, (c) => {
      const version = findVersion(c, target);
      version.status = outcome.status;
      version.text = outcome.text;
      if (outcome.stats) version.stats = AnswerStats.parse(outcome.stats);
      if (outcome.traceId) version.traceId = outcome.traceId;
      if (outcome.modelId) version.modelId = outcome.modelId;
      if (outcome.error) version.error = outcome.error;
    });
  }

  selectVersion(id: string, messageId: string, index: number): Promise<Conversation> {
    return this.update(id, (c) => {
      const message = findAssistant(c, messageId);
      if (!Number.isInteger(index) || index < 0 || index >= message.versions.length) {
        throw new StorageError('invalid', `version ${index} does not exist`);
      }
      message.current = index;
    });
  }

  /**
   * Start-up recovery: an answer still marked streaming was cut off by a crash or a quit. It keeps the
   * text saved so far and becomes `interrupted`. Returns how many answers were recovered.
   */
  async recoverInterrupted(): Promise<number> {
    let recovered = 0;
    for (const { id } of await this.list()) {
      const conversation = await this.get(id);
      const streaming = conversation.messages.flatMap(answersOf).filter((v) => v.status === 'streaming');
      if (streaming.length === 0) continue;
      await this.update(id, (c) => {
        for (const v of c.messages.flatMap(answersOf)) if (v.status === 'streaming') v.status = 'interrupted';
      });
      recovered += streaming.length;
    }
    return recovered;
  }

  /** Records a comparison asked in the conversation, both answers streaming; returns its message id. */
  async addComparison(id: string, text: string, images: string[], methods: Record<CompareSideName, string>): Promise<string> {
    const answer = (method: string): ComparedAnswer => ({ method, text: '', status: 'streaming' });
    const message = ComparisonMessage.parse({
      id: randomUUID(),
      role: 'comparison',
      text,
      images,
      createdAt: this.now(),
      left: answer(methods.left),
      right: answer(methods.right),
    });
    await this.update(id, (c) => {
      if (c.title === DEFAULT_TITLE && c.messages.length === 0) c.title = cleanTitle(text) || DEFAULT_TITLE;
      c.messages.push(message);
    });
    return message.id;
  }

  /** Closes one side of a comparison with its outcome (as finishAnswer does for a chat answer). */
  finishComparedAnswer(id: string, messageId: string, side: CompareSideName, outcome: AnswerOutcome): Promise<Conversation> {
    return this.update(id, (c) => {
      const message = c.messages.find((m) => m.id === messageId);
      if (message?.role !== 'comparison') throw new StorageError('not-found', `no comparison ${messageId}`);
      const answer = message[side];
      answer.status = outcome.status;
      answer.text = outcome.text;
      if (outcome.stats) answer.stats = AnswerStats.parse(outcome.stats);
      if (outcome.traceId) answer.traceId = outcome.traceId;
      if (outcome.modelId) answer.modelId = outcome.modelId;
      if (outcome.error) answer.error = outcome.error;
    });
  }

  private update(id: string, mutate: (c: Conversation) => void): Promise<Conversation> {
    return this.serialized(id, async () => {
      const conversation = await this.read(id);
      mutate(conversation);
      conversation.updatedAt = Math.max(this.now(), conversation.updatedAt);
      await this.write(conversation);
      return conversation;
    });
  }

  /** Runs `work` after every earlier operation on the same conversation has settled. */
  private serialized<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return next;
  }

  private async read(id: string): Promise<Conversation> {
    let text: string;
    try {
      text = await readFile(this.file(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StorageError('not-found', `no conversation ${id}`);
      throw err;
    }
    try {
      return Conversation.parse(migrate(JSON.parse(text)));
    } catch (err) {
      const why =
        err instanceof z.ZodError
          ? describeIssues(err)
          : err instanceof SyntaxError
            ? `not valid JSON (${err.message})`
            : (err as Error).message;
      throw new StorageError(
        'corrupt',
        `Conversation ${id} cannot be read: ${why}. Its file ${this.file(id)} is left as it was; restore it from a backup or delete it.`,
      );
    }
  }

  private async write(conversation: Conversation): Promise<void> {
    await writeFileAtomic(this.file(conversation.id), JSON.stringify(Conversation.parse(conversation), null, 1));
  }

  private file(id: string): string {
    if (!Id.safeParse(id).success) throw new StorageError('invalid', `invalid conversation id: ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.json`);
  }

  private ensureDir(): Promise<unknown> {
    this.ready ??= mkdirPrivate(this.dir);
    return this.ready;
  }
}

function summarize(c: Conversation): ConversationSummary {
  return { id: c.id, title: c.title, createdAt: c.createdAt, updatedAt: c.updatedAt, messageCount: c.messages.length };
}

/** The texts a message holds, for search: the question, every answer version, a comparison's question and both answers. */
function textsOf(m: Conversation['messages'][number]): string[] {
  if (m.role === 'user') return [m.text];
  if (m.role === 'assistant') return m.versions.map((v) => v.text);
  return [m.text, m.left.text, m.right.text];
}

/** About `SNIPPET` characters of `text` around the first `word` (lower case), on one line, elided at cut ends. */
function snippet(text: string, word: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  const at = line.toLowerCase().indexOf(word);
  const start = Math.max(0, Math.min(at - Math.floor((SNIPPET - word.length) / 2), line.length - SNIPPET));
  const end = Math.min(line.length, start + SNIPPET);
  return `${start > 0 ? '…' : ''}${line.slice(start, end)}${end < line.length ? '…' : ''}`;
}
const SNIPPET = 60;

/** Every answer a message holds: an assistant message's versions, a comparison's two sides. */
export function answersOf(m: Conversation['messages'][number]): { status: AnswerStatus; traceId?: string }[] {
  if (m.role === 'assistant') return m.versions;
  return m.role === 'comparison' ? [m.left, m.right] : [];
}

function cleanTitle(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1)}…` : line;
}

function findAssistant(c: Conversation, messageId: string): AssistantMessage {
  const message = c.messages.find((m) => m.id === messageId);
  if (message?.role !== 'assistant') throw new StorageError('not-found', `no assistant message ${messageId}`);
  return message;
}

function findVersion(c: Conversation, target: AnswerTarget): AnswerVersion {
  const version = findAssistant(c, target.messageId).versions.find((v) => v.id === target.versionId);
  if (!version) throw new StorageError('not-found', `no answer version ${target.versionId}`);
  return version;
}
