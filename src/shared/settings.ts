import { z } from 'zod';
import { ProviderRequest } from './providers.js';
import { parseMethod, parseSchedule, withOverrides, type MethodSpec } from './pruning.js';

/**
 * What the app remembers between runs (settings.json in the user-data folder). Every field has a
 * default, so an empty or older file still parses. Methods are kept as the CLI's method strings
 * (`transprune-high`, `fastv:k=2,r=0.5`, ...) so the app and the CLI speak the same language.
 */

const methodText = z.string().refine((text) => isValid(() => parseMethod(text)), 'not a known pruning method');
const scheduleText = z.string().refine((text) => isValid(() => parseSchedule(text)), 'not a schedule like 7-12/7,9,12/0.875,0.625,0.125');

export const Sampling = z.object({
  /** 0 means greedy. */
  temperature: z.number().min(0).max(2).default(0),
  topP: z.number().gt(0).max(1).default(1),
  maxTokens: z.number().int().min(1).max(4096).default(256),
  seed: z.number().int().min(0).default(0),
});
export type Sampling = z.infer<typeof Sampling>;

export const AppSettings = z.object({
  modelId: z.string().optional(),
  /** An execution provider, or `auto` for the engine's best one that loads. */
  provider: ProviderRequest.default('auto'),
  method: methodText.default('transprune-high'),
  /** Replaces the method's schedule (transprune and random only). */
  schedule: scheduleText.optional(),
  /** TransPrune's weight of TTV against IGA. */
  alpha: z.number().min(0).max(1).default(0.5),
  sampling: Sampling.default(Sampling.parse({})),
  /** Qwen2.5-VL's visual-token budget: the most tokens an image may become (28 x 28 px each); 0 = the model's own max_pixels. */
  maxVisualTokens: z.number().int().min(0).max(16384).default(0),
  compare: z
    .object({ left: methodText.default('none'), right: methodText.default('transprune-high') })
    .default({ left: 'none', right: 'transprune-high' }),
});
export type AppSettings = z.infer<typeof AppSettings>;

export const DEFAULT_SETTINGS: AppSettings = AppSettings.parse({});

/**
 * What belongs to one conversation: the model, method, system prompt, max new tokens and temperature it
 * answers with. A new conversation takes the global settings as they are then; changing either later
 * leaves the other alone. The provider, top-p, seed, schedule and alpha stay global.
 */
export const ConversationSettings = z.object({
  modelId: z.string().optional(),
  method: methodText,
  systemPrompt: z.string().max(8000).default(''),
  maxTokens: Sampling.shape.maxTokens,
  temperature: Sampling.shape.temperature,
});
export type ConversationSettings = z.infer<typeof ConversationSettings>;

/** A new conversation's settings: the global ones now. */
export function conversationDefaults(settings: AppSettings): ConversationSettings {
  const { modelId, method, sampling } = settings;
  return { ...(modelId && { modelId }), method, systemPrompt: '', maxTokens: sampling.maxTokens, temperature: sampling.temperature };
}

/** The settings an answer in a conversation runs with: the global ones under the conversation's own (older conversations have none). */
export function settingsFor(global: AppSettings, conversation: ConversationSettings | undefined): AppSettings {
  if (!conversation) return global;
  const { modelId, method, maxTokens, temperature } = conversation;
  return { ...global, modelId: modelId ?? global.modelId, method, sampling: { ...global.sampling, maxTokens, temperature } };
}

/** The method a chat answer runs with: the chosen method plus the schedule and alpha overrides that apply to it. */
export function chatMethod(settings: AppSettings): MethodSpec {
  const spec = parseMethod(settings.method);
  const kind = spec.llm.kind;
  return withOverrides(spec, {
    schedule: settings.schedule && (kind === 'transprune' || kind === 'random') ? parseSchedule(settings.schedule) : undefined,
    alpha: kind === 'transprune' ? settings.alpha : undefined,
  });
}

function isValid(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch {
    return false;
  }
}

/** The request's maxPixels for the settings' visual-token budget (undefined: the model's own). */
export function maxPixelsOf(settings: AppSettings): number | undefined {
  return settings.maxVisualTokens > 0 ? settings.maxVisualTokens * 28 * 28 : undefined;
}
