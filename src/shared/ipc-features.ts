import { z } from 'zod';
import { AnswerStats, AnswerStatus, Conversation, ConversationSummary, Id, ImageId, StoredImage } from './conversation.js';
import { MethodSpec } from './pruning.js';
import { AppSettings } from './settings.js';
import { Trace } from './trace.js';

/**
 * The app API's feature calls (chat, images, compare, traces, exports, settings): the App UI section
 * of the contract, spread into `appCalls` / `appEvents` in ipc.ts. Same shape as every other entry:
 * a request schema and a response schema. Binary data travels as base64 so the Electron IPC and the
 * web bridge's JSON carry it alike.
 */

const spec = <Req extends z.ZodType, Res extends z.ZodType>(request: Req, response: Res) => ({ request, response });
const None = z.object({}).strict();
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
/** A PNG/JPEG/WebP data: URL, ready for <img src>. */
const DataUrl = z.string().startsWith('data:image/');

/** What a model card shows about an installed model pack, read from its manifest and files. */
export const ModelDetails = z.object({
  /** e.g. "LLaVA-1.5: CLIP ViT (24 layers) + Llama (32 layers, hidden 4096)". */
  architecture: z.string(),
  /** Weights in the checkpoint, as Hugging Face counts them. */
  parameters: z.number().int().nonnegative(),
  dtype: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  /** Visual tokens per image before pruning. */
  visualTokens: z.number().int().nonnegative(),
  layers: z.number().int().positive(),
});
export type ModelDetails = z.infer<typeof ModelDetails>;

/** A model pack in the store. */
export const ModelSummary = z.object({ id: z.string(), name: z.string(), path: z.string(), details: ModelDetails.optional() });
export type ModelSummary = z.infer<typeof ModelSummary>;

/** How long work is going: `total` 0 while it cannot be counted. One shape for imports, downloads and answers. */
export const Progress = z.object({ done: z.number().nonnegative(), total: z.number().nonnegative(), message: z.string().optional() });
export type Progress = z.infer<typeof Progress>;

export const AnswerTargetSchema = z.object({ conversationId: Id, messageId: Id, versionId: Id });
export type AnswerTargetSchema = z.infer<typeof AnswerTargetSchema>;

/**
 * Where an export went: a path the user chose (null when they cancelled the save dialog), or, in the
 * browser preview, the file itself for the browser to download.
 */
export const Saved = z.object({
  path: z.string().nullable(),
  download: z.object({ fileName: z.string(), mimeType: z.string(), data: Base64 }).optional(),
});
export type Saved = z.infer<typeof Saved>;

/** A sample image from the synthetic task with questions to try, for the empty chat. */
export const Sample = z.object({ image: StoredImage, thumbnail: DataUrl, questions: z.array(z.string()).min(1) });
export type Sample = z.infer<typeof Sample>;

export const CompareSide = z.enum(['left', 'right']);
export type CompareSide = z.infer<typeof CompareSide>;

export const featureCalls = {
  'conversations.list': spec(z.object({ query: z.string().max(200).optional() }), z.array(ConversationSummary)),
  'conversations.create': spec(z.object({ title: z.string().max(200).optional() }), Conversation),
  'conversations.get': spec(z.object({ id: Id }), Conversation),
  'conversations.rename': spec(z.object({ id: Id, title: z.string().min(1).max(200) }), Conversation),
  'conversations.delete': spec(z.object({ id: Id }), None),
  'conversations.selectVersion': spec(z.object({ id: Id, messageId: Id, index: z.number().int().min(0) }), Conversation),

  /** Dropped, pasted and picked images all arrive here; main validates and stores them. */
  'images.add': spec(z.object({ data: Base64 }), z.object({ image: StoredImage, thumbnail: DataUrl })),
  'images.get': spec(z.object({ id: ImageId }), z.object({ image: StoredImage, thumbnail: DataUrl })),

  'settings.get': spec(None, AppSettings),
  'settings.set': spec(AppSettings, AppSettings),

  /** Adds the user's turn (to a new conversation without an id) and starts the answer; it streams as `chat.answer` events. */
  'chat.send': spec(
    z.object({ conversationId: Id.optional(), text: z.string().max(20_000), images: z.array(ImageId).max(8) }),
    AnswerTargetSchema,
  ),
  /** A new version of an assistant message; the old ones are kept. */
  'chat.regenerate': spec(z.object({ conversationId: Id, messageId: Id }), AnswerTargetSchema),
  'chat.stop': spec(z.object({ conversationId: Id }), z.object({ stopped: z.boolean() })),

  /** One question, two methods; the answers stream as `compare.answer` events. */
  'compare.run': spec(
    z.object({ text: z.string().min(1).max(20_000), image: ImageId, left: z.string(), right: z.string() }),
    z.object({ runId: Id }),
  ),
  'compare.stop': spec(z.object({ runId: Id }), z.object({ stopped: z.boolean() })),

  'traces.get': spec(z.object({ traceId: Id }), Trace),
  /** A trace file the user opened in the renderer, validated by main. */
  'traces.read': spec(z.object({ text: z.string().max(64 * 1024 * 1024) }), Trace),

  'export.trace': spec(z.object({ traceId: Id, format: z.enum(['json', 'csv']) }), Saved),
  'export.overlay': spec(z.object({ traceId: Id, png: Base64 }), Saved),
  'export.conversation': spec(z.object({ id: Id, format: z.enum(['markdown', 'json']) }), Saved),

  /** Converts a Hugging Face checkpoint folder (on the host machine) into a model pack; progress as `models.progress`. */
  'models.import': spec(z.object({ path: z.string().min(1).max(4096) }), ModelSummary),
  /** Downloads a Hugging Face repository's checkpoint files, then imports them; same progress and cancel. */
  'models.download': spec(z.object({ repoId: z.string().regex(/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/) }), ModelSummary),
  'models.cancelImport': spec(None, z.object({ cancelled: z.boolean() })),
  'models.remove': spec(z.object({ id: z.string().min(1) }), None),

  /** The sample images shipped with the app (resources/samples), added to the image store. */
  'samples.list': spec(None, z.array(Sample)),
};

const AnswerUpdate = z.object({
  text: z.string(),
  status: AnswerStatus,
  stats: AnswerStats.optional(),
  traceId: Id.optional(),
  error: z.string().optional(),
  /** While streaming: what the engine is doing (loading the model, encoding the image, prefill layer by layer, writing). */
  progress: Progress.optional(),
});

export const featureEvents = {
  'models.progress': Progress,
  /** The installed models after an import, download or removal. */
  'models.changed': z.array(ModelSummary),
  /** The streaming answer of a chat message: the whole text so far (batched), then the final state. */
  'chat.answer': AnswerTargetSchema.extend(AnswerUpdate.shape),
  'compare.answer': z.object({ runId: Id, side: CompareSide }).extend(AnswerUpdate.shape),
};
export type ChatAnswerEvent = z.infer<(typeof featureEvents)['chat.answer']>;
export type CompareAnswerEvent = z.infer<(typeof featureEvents)['compare.answer']>;

// ---------------------------------------------------------------- engine protocol: answers (main <-> engine)

export const PromptTurnSchema = z.object({ role: z.enum(['user', 'assistant']), text: z.string(), image: z.boolean().optional() });

/** One answer about one image: the engine loads the model if needed, streams `text` events, and returns stats and the trace. */
export const AskRequest = z.object({
  /** A model id from models.list; absent: the first installed model. */
  model: z.string().optional(),
  /** The image the turn marked `image` carries; absent for a text-only conversation. */
  imagePath: z.string().optional(),
  turns: z.array(PromptTurnSchema).min(1),
  method: MethodSpec,
  sampling: z.object({ temperature: z.number().min(0), topP: z.number().gt(0).max(1), seed: z.number().int().min(0) }),
  maxTokens: z.number().int().min(1),
  /** An execution provider, or `auto`. */
  ep: z.string(),
});
export type AskRequest = z.infer<typeof AskRequest>;

/** Several methods answer one question in one request: the engine computes their common early layers once. */
export const CompareRequest = AskRequest.omit({ method: true }).extend({ methods: z.array(MethodSpec).min(2).max(4) });
export type CompareRequest = z.infer<typeof CompareRequest>;

const Answer = z.object({ text: z.string(), stats: AnswerStats, trace: Trace.optional() });

export const featureEngineCalls = {
  'chat.ask': spec(AskRequest, Answer),
  /** Streams `text` events tagged with the method's index (`branch`); answers in the methods' order, stats with `sharedLayers`. */
  'chat.compare': spec(CompareRequest, z.object({ answers: z.array(Answer) })),
  /** Streams `progress` events; cancellable. */
  'models.import': spec(z.object({ path: z.string() }), ModelSummary),
  /** Unloads the model if it is the loaded one, then deletes its pack. */
  'models.remove': spec(z.object({ id: z.string() }), None),
};

export const featureEngineEvents = {
  /** Newly settled answer text of a `chat.ask` (or of method `branch` of a `chat.compare`), tagged with its request id. */
  text: z.object({ delta: z.string(), branch: z.number().int().min(0).optional() }),
  /** One method's finished answer in a `chat.compare`, sent as soon as it ends (the others may still be decoding). */
  answer: Answer.extend({ branch: z.number().int().min(0) }),
};
