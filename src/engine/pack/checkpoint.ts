// A Hugging Face LLaVA-1.5, LLaVA-NeXT or Qwen2.5-VL checkpoint folder, read and validated in full before anything is built:
// config.json, the safetensors (every tensor's name, shape and dtype), tokenizer.json,
// preprocessor_config.json, the chat template and the special token ids.

import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { parseLlavaConfig, visionOf, type LlavaConfig } from '../model/config.js';
import { isQwenModelType, parseQwenConfig, type QwenVLConfig } from '../model/qwen-config.js';
import { checkQwenTensors, type QwenWeightNames } from '../model/qwen-weights.js';
import { checkCheckpointTensors, type WeightLayout, type WeightNames, type WeightSource } from '../model/weights.js';
import { parseQwenImageParams, type QwenImageParams } from '../image/qwen.js';
import { TensorSet } from '../io/safetensors.js';
import type { ChatTurn } from '../../shared/ipc-features.js';
import { encodeChat, type ChatContent } from '../text/chat.js';
import { TextTokenizer } from '../text/tokenizer.js';
import { TimeBudgetError } from '../util/budget.js';
import type { WeightDtype } from '../onnx/weight-file.js';
import { ImageParams } from './manifest.js';
import { describeIssues } from '../../shared/result.js';

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/**
 * What an importer needs of a model, whatever its source (a Hugging Face folder here, a GGUF pair in
 * gguf-checkpoint.ts): validated config, the weights by Hugging Face name, and the text side's files.
 */
export interface Checkpoint {
  /** The folder or file imported, as the manifest records it. */
  source: string;
  layout: WeightLayout | 'gguf';
  config: LlavaConfig & { eosTokenId: number };
  extraEosTokenIds: number[];
  tensors: WeightSource;
  names: WeightNames;
  /** Image preprocessing; null for a text-only model. */
  image: ImageParams | null;
  chatTemplate: string | null;
  chatContent: ChatContent;
  /** What `--dtype keep` becomes: the precision nearest the source's own (GGUF files only). */
  keepDtype?: WeightDtype;
  /** Files that define the checkpoint, in a fixed order: the import id hashes them. */
  definingFiles: { label: string; path: string }[];
  /** Tokenizer-side files for the pack: copied from `path`, or written from `text`. */
  tokenizerFiles: ({ name: string; path: string } | { name: string; text: string })[];
}

/** A Qwen2.5-VL checkpoint: the same files, its own config, weight names and image processor. */
export interface QwenCheckpoint extends Omit<Checkpoint, 'config' | 'names' | 'image' | 'layout'> {
  layout: 'qwen2_5_vl';
  config: QwenVLConfig & { eosTokenId: number };
  names: QwenWeightNames;
  image: QwenImageParams;
}

export function isQwenCheckpoint(checkpoint: Checkpoint | QwenCheckpoint): checkpoint is QwenCheckpoint {
  return 'family' in checkpoint.config;
}

const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.json',
  'chat_template.jinja',
  'generation_config.json',
];

export async function readCheckpoint(dir: string): Promise<Checkpoint | QwenCheckpoint> {
  const kind = await stat(dir).then(
    (s) => (s.isDirectory() ? 'folder' : 'file'),
    () => 'missing',
  );
  if (kind === 'missing') throw new CheckpointError(`${dir} does not exist (expected a Hugging Face LLaVA checkpoint folder)`);
  if (kind === 'file') throw new CheckpointError(`${dir} is a file, not a checkpoint folder (choose the folder that holds config.json)`);
  if (!(await isFile(join(dir, 'config.json')))) {
    throw new CheckpointError(`${dir}: no config.json (expected a Hugging Face LLaVA-1.5, LLaVA-NeXT or Qwen2.5-VL checkpoint folder)`);
  }
  await refuseEscapingLinks(dir);
  const configText = await readFile(join(dir, 'config.json'), 'utf8');
  if (isQwenModelType(configText)) return readQwen(dir, parseQwenConfig(configText, join(dir, 'config.json')));
  const parsed = parseLlavaConfig(configText, join(dir, 'config.json'));
  const generation = await readJsonIfPresent(dir, 'generation_config.json');
  const eos = tokenIds(generation?.eos_token_id);
  const eosTokenId = parsed.eosTokenId ?? eos[0];
  if (eosTokenId === undefined) throw new CheckpointError(`${dir}: no eos_token_id in config.json or generation_config.json`);
  const config = { ...parsed, eosTokenId, bosTokenId: parsed.bosTokenId ?? tokenIds(generation?.bos_token_id)[0] ?? null };

  const tensors = await TensorSet.openFolder(dir);
  const names = checkCheckpointTensors(config, tensors);
  const text = await readTextSide(dir, { key: 'image_token_index', id: config.imageTokenIndex }, eosTokenId);
  const image = parseImageParams(await readImageProcessorConfig(dir), config, dir, await imageAspectRatio(dir, config));
  return {
    source: dir,
    layout: names.layout,
    config,
    tensors: weightSource(tensors),
    names,
    image,
    ...text,
    chatContent: 'parts',
    ...(await checkpointFiles(dir, tensors)),
    extraEosTokenIds: extraEos(eos, eosTokenId),
  };
}

function weightSource(tensors: TensorSet): WeightSource {
  return { dims: (name) => tensors.get(name)!.shape, readF32: (name) => tensors.readF32(name) };
}

async function readQwen(dir: string, parsed: QwenVLConfig): Promise<QwenCheckpoint> {
  const eos = await generationEos(dir);
  const eosTokenId = parsed.eosTokenId ?? eos[0];
  if (eosTokenId === undefined) throw new CheckpointError(`${dir}: no eos_token_id in config.json or generation_config.json`);
  const config = { ...parsed, eosTokenId };
  const tensors = await TensorSet.openFolder(dir);
  const names = checkQwenTensors(config, tensors);
  const text = await readTextSide(dir, { key: 'image_token_id', id: config.imageTokenId }, eosTokenId);
  const raw = await readImageProcessorConfig(dir);
  if (!raw) throw new CheckpointError(`${dir}: no preprocessor_config.json (nor an image_processor in processor_config.json)`);
  const image = parseQwenImageParams(raw);
  const v = config.vision;
  if (image.patchSize !== v.patchSize || image.mergeSize !== v.spatialMergeSize || image.temporalPatchSize !== v.temporalPatchSize)
    throw new CheckpointError(
      `${dir}: preprocessor_config.json's patch, merge or temporal patch size differs from config.json's vision_config`,
    );
  return {
    source: dir,
    layout: 'qwen2_5_vl',
    config,
    tensors: weightSource(tensors),
    names,
    image,
    ...text,
    chatContent: 'parts',
    ...(await checkpointFiles(dir, tensors)),
    extraEosTokenIds: extraEos(eos, eosTokenId),
  };
}

async function generationEos(dir: string): Promise<number[]> {
  return tokenIds((await readJsonIfPresent(dir, 'generation_config.json'))?.eos_token_id);
}

function extraEos(eos: number[], eosTokenId: number): number[] {
  return eos.filter((id) => id !== eosTokenId);
}

/** The tokenizer and chat template, checked: they load, know the image and end tokens, and render a test conversation in time. */
async function readTextSide(dir: string, image: { key: string; id: number }, eosTokenId: number): Promise<{ chatTemplate: string | null }> {
  const tokenizerConfig = await readJsonIfPresent(dir, 'tokenizer_config.json');
  const tokenizer = await checkTokenizer(dir, tokenizerConfig, [
    [image.key, image.id],
    ['eos_token_id', eosTokenId],
  ]);
  const chatTemplate = await readChatTemplate(dir, tokenizerConfig);
  exerciseTextSide(dir, tokenizer, chatTemplate, image.id);
  return { chatTemplate };
}

/** The files that define the checkpoint (hashed for the pack id) and the tokenizer-side ones copied into the pack. */
async function checkpointFiles(dir: string, tensors: TensorSet): Promise<Pick<Checkpoint, 'definingFiles' | 'tokenizerFiles'>> {
  const present = async (files: string[]) =>
    (await Promise.all(files.map(async (f) => ((await isFile(join(dir, f))) ? f : null)))).filter((f): f is string => f !== null);
  const tokenizerFiles = await present(TOKENIZER_FILES);
  const weightFiles = tensors.files.map((f) => basename(f)); // shards always sit in the folder itself
  const definingFiles = await present([
    'config.json',
    'preprocessor_config.json',
    'processor_config.json',
    ...TOKENIZER_FILES,
    'model.safetensors.index.json',
    ...weightFiles,
  ]);
  return {
    tokenizerFiles: tokenizerFiles.map((name) => ({ name, path: join(dir, name) })),
    definingFiles: definingFiles.map((label) => ({ label, path: join(dir, label) })),
  };
}

/** tokenizer.json must load in the tokenizer the engine uses, and know the image and end-of-sequence tokens. */
async function checkTokenizer(
  dir: string,
  tokenizerConfig: Record<string, unknown> | null,
  /** config.json's token ids the tokenizer must know, by key. */
  required: [string, number][],
): Promise<TextTokenizer> {
  const path = join(dir, 'tokenizer.json');
  const json = await readJsonIfPresent(dir, 'tokenizer.json');
  if (!json)
    throw new CheckpointError(`${dir}: no tokenizer.json (a fast tokenizer file is required; slow tokenizer.model only is not supported)`);
  let tokenizer: TextTokenizer;
  try {
    tokenizer = TextTokenizer.fromJson(json, tokenizerConfig ?? {});
  } catch (err) {
    throw new CheckpointError(`${path}: ${(err as Error).message}`);
  }
  for (const [what, id] of required) {
    if (tokenizer.idToToken(id) === undefined) throw new CheckpointError(`${path}: has no token with id ${id}, config.json's ${what}`);
  }
  return tokenizer;
}

/** Import-time budget for each test text: a real tokenizer or template needs milliseconds. */
const IMPORT_TEXT_BUDGET_MS = 2_000;

/** Texts that make backtracking patterns show themselves: long runs of one kind of character, and ordinary prose. */
const PROBE_TEXTS = [
  'What is on the table? Describe the picture in one sentence, please.',
  'a'.repeat(64),
  'x'.repeat(64),
  ' '.repeat(64),
  '0123456789'.repeat(6),
  '!?.,;:-_()[]{}<>/\\\'"'.repeat(4),
  'Ünïcödé – 日本語のテキスト 🙂\n\t'.repeat(4),
];

const PROBE_CONVERSATION: ChatTurn[] = [
  { role: 'user', text: 'What is in the picture?', image: true },
  { role: 'assistant', text: 'A red circle on a white background.' },
  { role: 'user', text: 'How many circles are there?' },
];

/**
 * The tokenizer's patterns and the chat template are the checkpoint's code, run on every question:
 * one that loops for ever would hang the engine at ask time. Both are run here on test texts, each
 * under a short budget, so such a checkpoint is refused before anything is built.
 */
export function exerciseTextSide(
  dir: string,
  tokenizer: TextTokenizer,
  chatTemplate: string | null,
  imageTokenId: number,
  { content = 'parts', withImage = true }: { content?: ChatContent; withImage?: boolean } = {},
): void {
  const budgetMs = IMPORT_TEXT_BUDGET_MS;
  const turns = withImage ? PROBE_CONVERSATION : PROBE_CONVERSATION.map(({ role, text }) => ({ role, text }));
  try {
    for (const text of PROBE_TEXTS) tokenizer.decode(tokenizer.encode(text, { budgetMs }), { budgetMs });
    encodeChat(tokenizer, turns, { template: chatTemplate ?? undefined, content, imageTokenId, budgetMs });
  } catch (e) {
    if (e instanceof TimeBudgetError) throw new CheckpointError(`${dir}: refused at import: ${e.message}`);
    throw new CheckpointError(`${dir}: the tokenizer or chat template fails on a test conversation: ${(e as Error).message}`);
  }
}

/** preprocessor_config.json, or the `image_processor` entry of processor_config.json (where transformers 5 saves it). */
async function readImageProcessorConfig(dir: string): Promise<Record<string, unknown> | null> {
  const own = await readJsonIfPresent(dir, 'preprocessor_config.json');
  if (own) return own;
  const processor = await readJsonIfPresent(dir, 'processor_config.json');
  const nested = processor?.image_processor;
  return nested && typeof nested === 'object' ? (nested as Record<string, unknown>) : null;
}

/**
 * CLIPImageProcessor parameters with transformers' defaults. The output must be the vision tower's
 * square input, since the vision graph has a fixed pixel_values shape.
 */
function parseImageParams(
  raw: Record<string, unknown> | null,
  config: LlavaConfig,
  dir: string,
  aspect: ImageParams['image_aspect_ratio'],
): ImageParams {
  const where = join(dir, 'preprocessor_config.json');
  if (!raw) throw new CheckpointError(`${dir}: no preprocessor_config.json (nor an image_processor in processor_config.json)`);
  const side = visionOf(config).imageSize;
  const square = (v: unknown) => (typeof v === 'number' ? { height: v, width: v } : v);
  const params = ImageParams.safeParse({
    do_resize: raw.do_resize ?? true,
    size: typeof raw.size === 'number' ? { shortest_edge: raw.size } : (raw.size ?? { shortest_edge: 224 }),
    resample: raw.resample ?? 3,
    do_center_crop: raw.do_center_crop ?? true,
    crop_size: square(raw.crop_size ?? 224),
    do_rescale: raw.do_rescale ?? true,
    rescale_factor: raw.rescale_factor ?? 1 / 255,
    do_normalize: raw.do_normalize ?? true,
    image_mean: raw.image_mean ?? [0.48145466, 0.4578275, 0.40821073],
    image_std: raw.image_std ?? [0.26862954, 0.26130258, 0.27577711],
    image_aspect_ratio: aspect,
  });
  if (!params.success) {
    throw new CheckpointError(`${where}: ${describeIssues(params.error)}`);
  }
  const p = params.data;
  // LLaVA-NeXT: the processor tiles with its own copy of the resolutions; both must agree or tiles and features would not line up.
  if (
    config.anyres &&
    raw.image_grid_pinpoints !== undefined &&
    JSON.stringify(raw.image_grid_pinpoints) !== JSON.stringify(config.anyres.gridPinpoints)
  ) {
    throw new CheckpointError(
      `${where}: image_grid_pinpoints ${JSON.stringify(raw.image_grid_pinpoints)} differ from config.json's ${JSON.stringify(config.anyres.gridPinpoints)}`,
    );
  }
  const out = p.do_center_crop ? p.crop_size : p.do_resize && 'height' in p.size ? p.size : null;
  if (!out || out.height !== side || out.width !== side) {
    throw new CheckpointError(
      `${where}: images must come out ${side}x${side} (the vision tower's image_size), but crop/size give ${out ? `${out.width}x${out.height}` : 'a variable size'}`,
    );
  }
  return p;
}

/**
 * Pad or crop (manifest `image_aspect_ratio`). LLaVA-1.5 was trained, and the official LLaVA and TransPrune
 * code evaluate, with the image padded to a square in the mean colour (`image_aspect_ratio: pad` in the
 * original config.json); llava-hf's LlavaProcessor resizes and centre-crops instead. So: what config.json
 * says when it says it; else crop for a checkpoint that comes with llava-hf's processor (`processor_class:
 * LlavaProcessor`), pad otherwise. LLaVA-NeXT's views are its own (AnyRes), never padded here.
 */
async function imageAspectRatio(dir: string, config: LlavaConfig): Promise<ImageParams['image_aspect_ratio']> {
  if (config.anyres) return 'crop';
  const said = (await readJsonIfPresent(dir, 'config.json'))?.image_aspect_ratio;
  if (said !== undefined) return said === 'pad' ? 'pad' : 'crop';
  const processors = [await readJsonIfPresent(dir, 'preprocessor_config.json'), await readJsonIfPresent(dir, 'processor_config.json')];
  return processors.some((p) => p?.processor_class === 'LlavaProcessor') ? 'crop' : 'pad';
}

/** chat_template.jinja, then chat_template.json, then tokenizer_config.json's chat_template; null if none. */
async function readChatTemplate(dir: string, tokenizerConfig: Record<string, unknown> | null): Promise<string | null> {
  const jinja = await readFile(join(dir, 'chat_template.jinja'), 'utf8').catch(() => null);
  if (jinja !== null) return jinja;
  const json = await readJsonIfPresent(dir, 'chat_template.json');
  const template = json?.chat_template ?? tokenizerConfig?.chat_template ?? null;
  if (template === null || typeof template === 'string') return template;
  if (Array.isArray(template)) {
    const named = template as { name?: unknown; template?: unknown }[];
    const chosen = (named.find((t) => t.name === 'default') ?? named[0])?.template;
    if (typeof chosen === 'string') return chosen;
  }
  throw new CheckpointError(`${dir}: chat_template must be a string or a list of {name, template}`);
}

/**
 * Every file the importer reads or copies sits in the folder itself, so a symlink there must not lead
 * out of it (a linked chat_template.jinja would copy any readable file into the pack). The one
 * exception is the Hugging Face cache's own layout: `<repo>/snapshots/<rev>/<file>` -> `<repo>/blobs/<sha>`.
 */
async function refuseEscapingLinks(dir: string): Promise<void> {
  const realDir = await realpath(dir);
  const allowed = [realDir];
  if (basename(dirname(realDir)) === 'snapshots') allowed.push(join(dirname(dirname(realDir)), 'blobs'));
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (!(await lstat(path)).isSymbolicLink()) continue;
    const target = await realpath(path).catch(() => null);
    const inside = target !== null && allowed.some((root) => isWithin(root, target));
    if (!inside) {
      throw new CheckpointError(
        `${path} is a link to ${target ?? 'a missing file'}, outside the checkpoint folder; copy the real file into the folder and import again`,
      );
    }
  }
}

function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep);
}

function tokenIds(value: unknown): number[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return list.filter((v): v is number => Number.isInteger(v) && v >= 0);
}

async function readJsonIfPresent(dir: string, file: string): Promise<Record<string, unknown> | null> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CheckpointError(`${path}: cannot read (${(err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CheckpointError(`${path}: expected a JSON object`);
  return value as Record<string, unknown>;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
