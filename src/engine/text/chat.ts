import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { TimeBudgetError, withinBudget } from '../util/budget.js';
import type { ChatTurn } from '../../shared/ipc-features.js';
import type { TextTokenizer } from './tokenizer.js';

/**
 * Chat prompts. A conversation is rendered with the checkpoint's Jinja chat template (HF LLaVA
 * templates take content lists: [{type:'image'}, {type:'text', text}]) or, when it has none, with
 * LLaVA-1.5's own format:
 *
 *   single turn:  USER: <image>\n{question} ASSISTANT:
 *   multi-turn:   USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT:
 *   system text:  "{system} " before the first USER (none by default)
 *   text only:    USER: {question} ASSISTANT:
 *
 * Then it is tokenized (BOS from the tokenizer's post-processor unless the template wrote it) and the
 * single <image> placeholder located; the runtime splices the N visual tokens in at that index.
 */

export class ChatPromptError extends Error {}

export const IMAGE_TOKEN = '<image>';

/** LLaVA-1.5's conversation format as a Jinja template, so one renderer serves every checkpoint. */
export const LLAVA_15_CHAT_TEMPLATE =
  '{% for message in messages %}' +
  "{% if message['role'] == 'system' %}" +
  "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] + ' ' }}{% endif %}{% endfor %}" +
  "{% elif message['role'] == 'user' %}{{ 'USER: ' }}" +
  "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}" +
  "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] + ' ' }}{% endif %}{% endfor %}" +
  "{% else %}{{ 'ASSISTANT: ' }}" +
  "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{{ eos_token }}" +
  '{% endif %}{% endfor %}' +
  "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

type Json = Record<string, unknown>;

/**
 * The checkpoint's chat template, looked up as transformers does: chat_template.jinja,
 * chat_template.json ({chat_template}), then tokenizer_config.json's chat_template (a string, or a
 * list of {name, template} from which 'default' is taken). Undefined when there is none.
 */
export async function loadChatTemplate(dir: string, tokenizerConfig: Json = {}): Promise<string | undefined> {
  const jinja = await readFile(join(dir, 'chat_template.jinja'), 'utf8').catch(() => undefined);
  if (jinja) return jinja;
  const json = await readFile(join(dir, 'chat_template.json'), 'utf8').catch(() => undefined);
  if (json) {
    let parsed: Json;
    try {
      parsed = JSON.parse(json) as Json;
    } catch (e) {
      throw new ChatPromptError(`chat_template.json is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof parsed.chat_template === 'string') return parsed.chat_template;
  }
  const fromConfig = tokenizerConfig.chat_template;
  if (typeof fromConfig === 'string') return fromConfig;
  if (Array.isArray(fromConfig)) {
    const named = fromConfig as { name?: string; template?: string }[];
    return (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  return undefined;
}

/** How long parsing and rendering a chat template may take: real templates need milliseconds. */
export const TEMPLATE_BUDGET_MS = 5_000;

export interface RenderOptions {
  /** Jinja source; LLaVA-1.5's format when undefined. */
  template?: string;
  /** Time budget for parsing and rendering the template (default TEMPLATE_BUDGET_MS). */
  budgetMs?: number;
  bosToken?: string;
  eosToken?: string;
  /** Append the assistant prefix so the model answers next (default true). */
  addGenerationPrompt?: boolean;
  /**
   * How the template takes a message: 'parts' (default), content lists as HF LLaVA templates read them;
   * 'text', plain strings as a language model's own template (a GGUF's) reads them, the image placeholder
   * starting the turn that carries it (`<image>\n{text}`, where llama.cpp's mtmd puts a LLaVA image).
   */
  content?: ChatContent;
}

export type ChatContent = 'parts' | 'text';

/** Renders the conversation to prompt text, within the template's time budget. */
export function renderChat(turns: readonly ChatTurn[], opts: RenderOptions = {}): string {
  const ms = opts.budgetMs ?? TEMPLATE_BUDGET_MS;
  return withinBudget(
    ms,
    `The model's chat template took longer than ${ms} ms to render a ${turns.length}-turn conversation (a loop without end, or over a huge range?). ` +
      "Re-import the model with the chat template from its publisher, or without one (the engine then uses LLaVA-1.5's format).",
    () => renderUnbudgeted(turns, opts),
  );
}

function renderUnbudgeted(turns: readonly ChatTurn[], opts: RenderOptions): string {
  const messages = turns.map((t) => ({
    role: t.role,
    content:
      opts.content === 'text'
        ? `${t.image ? `${IMAGE_TOKEN}\n` : ''}${t.text}`
        : [...(t.image ? [{ type: 'image' }] : []), { type: 'text', text: t.text }],
  }));
  let template: Template;
  try {
    template = new Template(opts.template ?? LLAVA_15_CHAT_TEMPLATE);
  } catch (e) {
    throw new ChatPromptError(`the chat template does not parse: ${(e as Error).message}`);
  }
  try {
    return template.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
    });
  } catch (e) {
    if (e instanceof TimeBudgetError) throw e;
    throw new ChatPromptError(`the chat template failed to render: ${(e as Error).message}`);
  }
}

/** Index of the one image placeholder in `ids`; throws when it is missing or repeated. */
export function findImageToken(ids: readonly number[], imageTokenId: number): number {
  const first = ids.indexOf(imageTokenId);
  if (first < 0) throw new ChatPromptError(`the prompt has no ${IMAGE_TOKEN} placeholder (token id ${imageTokenId})`);
  if (ids.indexOf(imageTokenId, first + 1) >= 0)
    throw new ChatPromptError(`the prompt has more than one ${IMAGE_TOKEN} placeholder; one image per conversation is supported`);
  return first;
}

export interface EncodedPrompt {
  text: string;
  ids: number[];
  /** Index in `ids` of the <image> placeholder token; -1 for a text-only conversation. */
  imageIndex: number;
}

/** Renders the conversation, tokenizes it and locates the image placeholder (when a turn carries the image). */
export function encodeChat(
  tokenizer: TextTokenizer,
  turns: readonly ChatTurn[],
  opts: RenderOptions & { imageTokenId: number },
): EncodedPrompt {
  const text = renderChat(turns, { bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken, ...opts });
  // Templates that write the BOS themselves must not get a second one from the post-processor.
  const templateWroteBos = tokenizer.bosToken !== undefined && tokenizer.bosToken !== '' && text.startsWith(tokenizer.bosToken);
  const ids = tokenizer.encode(text, { addSpecialTokens: !templateWroteBos, budgetMs: opts.budgetMs });
  const hasImage = turns.some((t) => t.image);
  if (!hasImage && ids.includes(opts.imageTokenId))
    throw new ChatPromptError(`the text contains the ${IMAGE_TOKEN} placeholder, but no image was attached`);
  return { text, ids, imageIndex: hasImage ? findImageToken(ids, opts.imageTokenId) : -1 };
}
