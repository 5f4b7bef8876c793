import type { Answer, AskRequest, ChatTurn, ModelSummary } from '../shared/ipc-features.js';
import { parseMethod, parseSchedule, withOverrides, type MethodSpec } from '../shared/pruning.js';
import { chatMethod, type AppSettings } from '../shared/settings.js';
import type { Trace } from '../shared/trace.js';
import { answerSettings } from '../main/features/answerer.js';
import { IMAGES_PER_TURN } from '../main/features/chat.js';
import { ApiError, type ChatCompletionRequest, type ChatMessage, type TransPruneOptions } from './openai.js';

/**
 * What a chat-completions request means for the engine (the turns, the one image, the method and the
 * sampling, each defaulting to the app's settings), and what its answer means for the client: OpenAI's
 * `usage` and the `x_transprune` block.
 */

/** The methods a request can name, as examples of `parseMethod`'s language (any of its spellings is accepted). */
export const METHOD_EXAMPLES = [
  'none',
  'transprune-high',
  'transprune-low',
  'ttv',
  'iga',
  'fastv:k=2,r=0.5',
  'pdrop:stages=4,lambda=0.5',
  'random:seed=0',
  'divprune:ratio=0.25',
  'divprune:ratio=0.5+transprune-high',
];

/** The conversation as the chat template takes it, and the URL of its image (one per request, on a user turn). */
export function promptOf(messages: ChatMessage[]): { turns: ChatTurn[]; imageUrl?: string } {
  const images = messages.flatMap((m, i) =>
    Array.isArray(m.content) ? m.content.flatMap((part) => (part.type === 'image_url' ? [{ message: i, part }] : [])) : [],
  );
  if (images.length > IMAGES_PER_TURN) {
    throw new ApiError(400, 'too_many_images', `LLaVA answers about one image per request; this one has ${images.length}.`, 'messages');
  }
  const image = images[0];
  if (image && messages[image.message].role !== 'user')
    throw new ApiError(400, 'invalid_image', 'Only a user message can carry the image.', 'messages');
  if (messages.at(-1)?.role !== 'user') throw new ApiError(400, 'invalid_messages', 'The last message must be the user’s.', 'messages');

  const turns = messages.flatMap((m, i): ChatTurn[] => {
    const text = textOf(m);
    const role = m.role === 'developer' ? 'system' : m.role;
    if (role === 'assistant' && !text) return [];
    return [{ role, text, ...(image?.message === i && { image: true }) }];
  });
  if (!image && !turns.some((t) => t.role === 'user' && t.text.trim())) {
    throw new ApiError(400, 'invalid_messages', 'Ask a question or send an image.', 'messages');
  }
  const part = image?.part.image_url;
  return { turns, imageUrl: part === undefined ? undefined : typeof part === 'string' ? part : part.url };
}

function textOf(message: ChatMessage): string {
  const content = message.content ?? '';
  if (typeof content === 'string') return content;
  return content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n');
}

/** The request's method, its schedule and alpha applied; the app's chat method (Settings) when it names none. */
export function methodOf(options: TransPruneOptions | undefined, settings: AppSettings): MethodSpec {
  if (options?.method === undefined && options?.schedule === undefined && options?.alpha === undefined) return chatMethod(settings);
  try {
    const spec = parseMethod(options.method ?? settings.method);
    return withOverrides(spec, {
      schedule: options.schedule === undefined ? undefined : parseSchedule(options.schedule),
      alpha: options.alpha,
    });
  } catch (e) {
    const message = (e as Error).message.replaceAll('--schedule', 'schedule').replaceAll('--alpha', 'alpha');
    throw new ApiError(
      400,
      'invalid_method',
      `transprune: ${message}. Methods look like ${METHOD_EXAMPLES.slice(0, 6).join(', ')}.`,
      'transprune',
    );
  }
}

/** The engine's request: the client's fields where given, the app's settings (sampling, provider) where not. */
export function askRequestOf(
  request: ChatCompletionRequest,
  model: ModelSummary,
  turns: ChatTurn[],
  image: string | undefined,
  settings: AppSettings,
): AskRequest {
  const defaults = answerSettings(settings);
  const stop = typeof request.stop === 'string' ? [request.stop] : (request.stop ?? undefined);
  return {
    model: model.id,
    image,
    turns,
    method: methodOf(request.transprune, settings),
    sampling: {
      temperature: request.temperature ?? defaults.sampling?.temperature,
      topP: request.top_p ?? defaults.sampling?.topP,
      seed: request.seed ?? defaults.sampling?.seed,
    },
    maxTokens: request.max_completion_tokens ?? request.max_tokens ?? defaults.maxTokens,
    stop: stop?.filter((s) => s !== ''),
    ep: defaults.ep,
  };
}

/** OpenAI's `usage`; prompt tokens as the model sees them: the text's and the image's visual tokens (before pruning). */
export function usageOf({ stats }: Answer): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const prompt = stats.prefillTokens ?? stats.promptTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: stats.generatedTokens, total_tokens: prompt + stats.generatedTokens };
}

/** The numbers behind an answer: visual tokens per stage, FLOPs in both conventions, times, and the trace when asked for. */
export function transpruneBlockOf({ stats, trace }: Answer, withTrace: boolean) {
  const { flops, timesMs } = trace.totals;
  return {
    method: trace.method.label,
    visual_tokens: { total: stats.visualTokensTotal, kept: stats.visualTokensKept, stages: visualStages(trace) },
    flops: {
      /** TransPrune's Eq. 7: multiply-accumulates over the visual tokens in the decoder, as the paper counts them. */
      paper_macs: flops.paper,
      paper_macs_unpruned: flops.paperUnpruned,
      /** Every FLOP of the prefill (2 per MAC): vision tower, projector, all tokens, scoring. */
      full_flops: flops.full,
      full_flops_unpruned: flops.fullUnpruned,
    },
    timings_ms: {
      time_to_first_token: stats.timeToFirstTokenMs,
      preprocess: timesMs.preprocess,
      vision: timesMs.vision,
      prefill: timesMs.prefill,
      decode: timesMs.decode,
    },
    decode_tokens_per_sec: stats.decodeTokensPerSec,
    execution_provider: stats.executionProvider,
    ...(withTrace && { trace }),
  };
}

/** Visual tokens out of the vision tower, after the projector-side selection (if any), then after each pruning layer. */
function visualStages(trace: Trace): { stage: 'vision' | 'projector' | 'layer'; after_layer?: number; tokens: number }[] {
  return [
    { stage: 'vision' as const, tokens: trace.prompt.visualTokens },
    ...(trace.projectorKept ? [{ stage: 'projector' as const, tokens: trace.projectorKept.length }] : []),
    ...trace.layers.flatMap((l) => (l.kept ? [{ stage: 'layer' as const, after_layer: l.layer, tokens: l.kept.length }] : [])),
  ];
}

/** The model a request names, by the name /v1/models lists or by its pack id; only installed (and served) models. */
export function findModel(models: ModelSummary[], name: string): ModelSummary {
  const model = models.find((m) => m.name === name) ?? models.find((m) => m.id === name);
  if (model) return model;
  const served = models.map((m) => m.name).join(', ') || 'none installed';
  throw new ApiError(404, 'model_not_found', `The model \`${name}\` does not exist on this server (models: ${served}).`, 'model');
}
