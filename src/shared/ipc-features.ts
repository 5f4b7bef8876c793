import { z } from 'zod';
import { AnswerStats, AnswerStatus, Conversation, ConversationSummary, Id, ImageId, StoredImage } from './conversation.js';
import { call } from './call.js';
import { ImportPlan, WeightDtype } from './dtypes.js';
import { CatalogueItem } from './catalogue.js';
import { Progress } from './progress.js';
import { ProviderRequest } from './providers.js';
import { MethodSpec } from './pruning.js';
import { AppSettings, ConversationSettings } from './settings.js';
import { Trace } from './trace.js';

/**
 * The app API's feature calls (chat, images, compare, traces, exports, settings): the App UI section
 * of the contract, spread into `appCalls` / `appEvents` in ipc.ts. Same shape as every other entry:
 * a request schema and a response schema. Binary data travels as base64 so the Electron IPC and the
 * web bridge's JSON carry it alike.
 */

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
  /** The checkpoint folder or GGUF file it was imported from. */
  source: z.string(),
});
export type ModelDetails = z.infer<typeof ModelDetails>;

/** A model pack in the store (re-exported by ipc.ts). */
export const ModelSummary = z.object({ id: z.string(), name: z.string(), path: z.string(), details: ModelDetails.optional() });
export type ModelSummary = z.infer<typeof ModelSummary>;

/** A weight file that is missing (or unreadable) or whose bytes differ from the sha256 recorded at import. */
export const DamagedFile = z.object({ file: z.string(), reason: z.enum(['missing', 'changed']) });
export type DamagedFile = z.infer<typeof DamagedFile>;

/** A pack's weight files checked against the sha256 its importer recorded (the first load, `cli verify` and Models' Verify). */
export const PackVerification = z.object({
  ok: z.boolean(),
  damaged: z.array(DamagedFile),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** When the check finished (ms since the epoch, like every time the app stores). */
  checkedAt: z.number(),
});
export type PackVerification = z.infer<typeof PackVerification>;

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
  'conversations.list': call(z.object({ query: z.string().max(200).optional() }), z.array(ConversationSummary)),
  'conversations.create': call(z.object({ title: z.string().max(200).optional() }), Conversation),
  'conversations.get': call(z.object({ id: Id }), Conversation),
  'conversations.rename': call(z.object({ id: Id, title: z.string().min(1).max(200) }), Conversation),
  'conversations.delete': call(z.object({ id: Id }), None),
  /** Replaces the conversation's own settings (model, method, system prompt, max new tokens, temperature). */
  'conversations.setSettings': call(z.object({ id: Id, settings: ConversationSettings }), Conversation),
  /** A conversation file made by Export JSON (images and traces inside), added as a new conversation. */
  'conversations.import': call(z.object({ text: z.string().max(64 * 1024 * 1024) }), Conversation),
  'conversations.selectVersion': call(z.object({ id: Id, messageId: Id, index: z.number().int().min(0) }), Conversation),

  /** Dropped, pasted and picked images all arrive here; main validates and stores them. */
  'images.add': call(z.object({ data: Base64 }), z.object({ image: StoredImage, thumbnail: DataUrl })),
  'images.get': call(z.object({ id: ImageId }), z.object({ image: StoredImage, thumbnail: DataUrl })),

  'settings.get': call(None, AppSettings),
  'settings.set': call(AppSettings, AppSettings),

  /** Adds the user's turn (to a new conversation without an id) and starts the answer; it streams as `chat.answer` events. */
  'chat.send': call(
    z.object({ conversationId: Id.optional(), text: z.string().max(20_000), images: z.array(ImageId).max(8) }),
    AnswerTargetSchema,
  ),
  /** A new version of an assistant message; the old ones are kept. */
  'chat.regenerate': call(z.object({ conversationId: Id, messageId: Id }), AnswerTargetSchema),
  /**
   * Asks an earlier question again, edited: a new conversation (a branch) with the turns before it and the
   * edited question, answered; the conversation it came from keeps the old branch as it was.
   */
  'chat.edit': call(z.object({ conversationId: Id, messageId: Id, text: z.string().max(20_000) }), AnswerTargetSchema),
  'chat.stop': call(z.object({ conversationId: Id }), z.object({ stopped: z.boolean() })),

  /**
   * One question, two methods (and, with `models`, two models: each side answered in turn; absent, the
   * conversation's model for both); the answers stream as `compare.answer` events and are kept in the
   * conversation (`conversationId`, or a new one) as a comparison message.
   */
  'compare.run': call(
    z.object({
      text: z.string().min(1).max(20_000),
      image: ImageId,
      left: z.string(),
      right: z.string(),
      models: z.object({ left: z.string().optional(), right: z.string().optional() }).optional(),
      conversationId: Id.optional(),
    }),
    z.object({ runId: Id, conversationId: Id, messageId: Id }),
  ),
  'compare.stop': call(z.object({ runId: Id }), z.object({ stopped: z.boolean() })),

  'traces.get': call(z.object({ traceId: Id }), Trace),
  /** A trace file the user opened in the renderer, validated by main. */
  'traces.read': call(z.object({ text: z.string().max(64 * 1024 * 1024) }), Trace),

  'export.trace': call(z.object({ traceId: Id, format: z.enum(['json', 'csv']) }), Saved),
  /** `layer`: the 1-based decoder layer the overlay shows (named in the file name). */
  'export.overlay': call(z.object({ traceId: Id, png: Base64, layer: z.number().int().min(1).max(1000).optional() }), Saved),
  'export.conversation': call(z.object({ id: Id, format: z.enum(['markdown', 'json']) }), Saved),

  /** Converts a Hugging Face checkpoint folder (on the host machine) into a model pack; progress as `models.progress`. */
  /** Reads a checkpoint folder without writing anything: its size and memory at each precision, and the one to offer. */
  'models.plan': call(z.object({ path: z.string().min(1).max(4096) }), ImportPlan),
  /** `dtype`: the precision to import at (the engine's default, fp32, when absent). */
  'models.import': call(z.object({ path: z.string().min(1).max(4096), dtype: WeightDtype.optional() }), ModelSummary),
  /** The curated catalogue, each entry with its download size (the hub's listing, else estimated) and footprint here. */
  'models.catalogue': call(None, z.array(CatalogueItem)),
  /**
   * Downloads a Hugging Face repository's checkpoint files (or the named `files`), checked against the hub's
   * hashes and resumable, then imports them at `dtype` (the one recommended for this machine when absent);
   * same progress and cancel as an import.
   */
  'models.download': call(
    z.object({
      repoId: z.string().regex(/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/),
      files: z.array(z.string().regex(/^[\w.-]+$/)).optional(),
      dtype: WeightDtype.optional(),
    }),
    ModelSummary,
  ),
  'models.cancelImport': call(None, z.object({ cancelled: z.boolean() })),
  'models.remove': call(z.object({ id: z.string().min(1) }), None),
  /** Re-hashes an installed pack's weight files against its manifest; progress as `models.verifyProgress`. */
  'models.verify': call(z.object({ id: z.string().min(1) }), PackVerification),

  /** The sample images shipped with the app (resources/samples), added to the image store. */
  'samples.list': call(None, z.array(Sample)),
};

/** What the renderer hears about an answer: the whole text so far while it streams, then its final state. */
export const AnswerUpdate = z.object({
  text: z.string(),
  status: AnswerStatus,
  stats: AnswerStats.optional(),
  traceId: Id.optional(),
  error: z.string().optional(),
  /** While streaming: what the engine is doing (loading the model, encoding the image, prefill layer by layer, writing). */
  progress: Progress.optional(),
});
export type AnswerUpdate = z.infer<typeof AnswerUpdate>;

export const featureEvents = {
  'models.progress': Progress,
  /** How far the verification of model `id` has got. */
  'models.verifyProgress': z.object({ id: z.string(), progress: Progress }),
  /** The installed models after an import, download or removal. */
  'models.changed': z.array(ModelSummary),
  /** The streaming answer of a chat message: the whole text so far (batched), then the final state. */
  'chat.answer': AnswerTargetSchema.extend(AnswerUpdate.shape),
  'compare.answer': z.object({ runId: Id, side: CompareSide }).extend(AnswerUpdate.shape),
};
export type ChatAnswerEvent = z.infer<(typeof featureEvents)['chat.answer']>;
export type CompareAnswerEvent = z.infer<(typeof featureEvents)['compare.answer']>;

// ---------------------------------------------------------------- engine protocol: answers (main <-> engine)

/** One conversation turn as the chat template takes it. */
export const ChatTurn = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  text: z.string(),
  /** This turn carries the image (rendered before its text); one turn per conversation. */
  image: z.boolean().optional(),
});
export type ChatTurn = z.infer<typeof ChatTurn>;

/** Next-token choice; each field has a default (greedy, no nucleus cut, seed 0). */
export const SamplingParams = z.object({
  /** 0 means greedy. */
  temperature: z.number().min(0).optional(),
  /** Keep the smallest set of tokens whose probability reaches topP (1: all). */
  topP: z.number().gt(0).max(1).optional(),
  seed: z.number().int().min(0).optional(),
});
export type SamplingParams = z.infer<typeof SamplingParams>;

/**
 * One question (about one image, or text only), as the engine's runtime takes it: the same object from the app's chat
 * service through the engine process to `Engine.ask` (and from the CLI and the evaluation to it). The
 * engine loads the model if needed, streams `text` events, and returns the answer, stats and trace.
 */
export const AskRequest = z.object({
  /** A model in the store (name or id), a pack folder, or a Hugging Face checkpoint folder (imported first); absent: the first installed model. */
  model: z.string().optional(),
  /** The image file's path, or its bytes (in process only: the engine process is sent paths); absent for a text-only question. */
  image: z.union([z.string(), z.custom<Uint8Array>((bytes) => bytes instanceof Uint8Array, 'expected a path or bytes')]).optional(),
  /** The whole conversation, the user's turn last and the image on the turn marked `image`... */
  turns: z.array(ChatTurn).min(1).optional(),
  /** ...or a single question about the image. */
  question: z.string().optional(),
  /** The pruning method (`{ llm: { kind: 'none' } }`: none). */
  method: MethodSpec,
  sampling: SamplingParams.optional(),
  maxTokens: z.number().int().min(1).optional(),
  /** Generation ends before any of these strings. */
  stop: z.array(z.string()).optional(),
  ep: ProviderRequest.optional(),
  /** Qwen2.5-VL's visual-token budget: the most pixels smart_resize may give the image (28 x 28 per token); absent: the checkpoint's max_pixels. LLaVA ignores it. */
  maxPixels: z
    .number()
    .int()
    .min(28 * 28)
    .optional(),
});
export type AskRequest = z.infer<typeof AskRequest>;

/** Several methods answer one question in one request: the engine computes their common early layers once. */
export const CompareRequest = AskRequest.omit({ method: true }).extend({ methods: z.array(MethodSpec).min(2).max(4) });
export type CompareRequest = z.infer<typeof CompareRequest>;

/** One method's answer: its text, the numbers under it, and its pruning trace. */
export const Answer = z.object({
  text: z.string(),
  stats: AnswerStats,
  trace: Trace,
  /** Why the answer ended: the end-of-sequence token, a stop string, the token limit (absent from older engines). */
  finishReason: z.enum(['eos', 'stop', 'length', 'cancelled']).optional(),
});
export type Answer = z.infer<typeof Answer>;

export const featureEngineCalls = {
  'chat.ask': call(AskRequest, Answer, ['text', 'progress']),
  /** Streams `text` events tagged with the method's index (`branch`); answers in the methods' order, stats with `sharedLayers`. */
  /** Streams each method's `answer` as soon as it is complete (the answers are decoded side by side). */
  'chat.compare': call(CompareRequest, z.object({ answers: z.array(Answer) }), ['text', 'progress', 'answer']),
  /** Cancellable. */
  'models.plan': call(z.object({ path: z.string() }), ImportPlan),
  /** Cancellable. */
  'models.import': call(z.object({ path: z.string(), dtype: WeightDtype.optional() }), ModelSummary, ['progress']),
  /** Unloads the model if it is the loaded one, then deletes its pack. */
  'models.remove': call(z.object({ id: z.string() }), None),
  /** Hashes the weight files of the installed pack `id`; streams `progress` (bytes hashed). Cancellable. */
  'models.verify': call(z.object({ id: z.string() }), PackVerification, ['progress']),
};

export const featureEngineEvents = {
  /** Newly settled answer text of a `chat.ask` (or of method `branch` of a `chat.compare`), tagged with its request id. */
  text: z.object({ delta: z.string(), branch: z.number().int().min(0).optional() }),
  /** One method's finished answer in a `chat.compare`, sent as soon as it ends (the others may still be decoding). */
  answer: Answer.extend({ branch: z.number().int().min(0) }),
};
