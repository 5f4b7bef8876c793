import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConversationExport, type Conversation } from '../../shared/conversation.js';
import { CodedError } from '../../shared/result.js';
import { readTrace } from '../../shared/trace-files.js';
import { answersOf } from '../storage/conversations.js';
import type { Storage } from '../storage/index.js';

/**
 * Conversations as files to keep or move (Export JSON, Import): the conversation with its images' bytes
 * and its answers' traces inside, so it opens whole on another computer.
 */
export async function conversationFile(storage: Storage, id: string): Promise<string> {
  const conversation = await storage.conversations.get(id);
  const images: Record<string, string> = {};
  for (const imageId of new Set(conversation.messages.flatMap((m) => (m.role === 'assistant' ? [] : m.images))))
    images[imageId] = (await readFile(await storage.images.path(imageId))).toString('base64');
  const traces: Record<string, unknown> = {};
  for (const { traceId } of conversation.messages.flatMap(answersOf))
    if (traceId) traces[traceId] = await storage.traces.get(traceId).catch(() => undefined);
  const file: ConversationExport = { format: 'transprune-conversation', version: 1, conversation, images, traces };
  return JSON.stringify(file, null, 2);
}

/** The conversation's images as data: URLs, so its Markdown export carries them inside. */
export async function imageDataUrls(storage: Storage, conversation: Conversation): Promise<Map<string, string>> {
  const urls = new Map<string, string>();
  for (const id of new Set(conversation.messages.flatMap((m) => (m.role === 'assistant' ? [] : m.images)))) {
    const { format } = await storage.images.info(id);
    urls.set(id, `data:image/${format};base64,${(await readFile(await storage.images.path(id))).toString('base64')}`);
  }
  return urls;
}

/** Adds the conversation of an exported file as a new one: its images through the image intake, its traces checked. */
export async function importConversationFile(storage: Storage, text: string): Promise<Conversation> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CodedError('invalid-request', `This file is not a conversation export: it is not JSON (${(err as Error).message}).`);
  }
  const file = ConversationExport.safeParse(data);
  if (!file.success)
    throw new CodedError('invalid-request', 'This file is not a conversation exported by TransPrune Studio (Export JSON).');
  for (const [id, base64] of Object.entries(file.data.images)) {
    const bytes = Buffer.from(base64, 'base64');
    // The id names the bytes: a file whose image does not match its id was edited or damaged.
    if (createHash('sha256').update(bytes).digest('hex') !== id)
      throw new CodedError('invalid-request', `The image ${id.slice(0, 12)}… in this file is damaged.`);
    await storage.images.addBytes(bytes);
  }
  const traceIds = new Map<string, string>();
  for (const [id, trace] of Object.entries(file.data.traces)) {
    if (trace === null || trace === undefined) continue;
    traceIds.set(id, await storage.traces.save(readTrace(JSON.stringify(trace))));
  }
  return storage.conversations.addImported(file.data.conversation, (id) => traceIds.get(id));
}
