// A llama.cpp GGUF language model, and optionally its vision projector (mmproj), read and validated in full as a
// Checkpoint the importer builds from like any Hugging Face folder: config from the metadata, weights by their
// Hugging Face names (dequantized, q/k rows back in transformers' order), tokenizer.json built from the vocabulary,
// and the chat template the file carries.

import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { toMatMulNBits, type GgmlType } from '../io/ggml-quants.js';
import { GgufError, GgufMetadata, readGgufHeader, readGgufTensorBytes, readGgufTensorF32, type GgufFile } from '../io/gguf.js';
import { ConfigError, type LlavaConfig } from '../model/config.js';
import { ggufSourceOf, ggufTextConfig, ggufVisionConfig, unpermuteRows, type GgufVision } from '../model/gguf.js';
import { checkTensors, expectedTensors, WeightError, WeightNames, type FoundTensor, type WeightSource } from '../model/weights.js';
import { ggufTokenizerFiles } from '../text/gguf-tokenizer.js';
import { TextTokenizer, TokenizerError } from '../text/tokenizer.js';
import type { WeightDtype } from '../onnx/weight-file.js';
import { CheckpointError, exerciseTextSide, type Checkpoint } from './checkpoint.js';
import type { ImageParams } from './manifest.js';

export function isGguf(path: string): boolean {
  return extname(path).toLowerCase() === '.gguf';
}

/**
 * The GGUF files an import source names: a .gguf file (with `mmproj` if given), or a folder holding one language
 * model GGUF and at most one `mmproj*.gguf` (how LM Studio keeps a LLaVA, and how the demo model ships). Null when
 * the source is not GGUF at all.
 */
export async function ggufSource(source: string, mmproj?: string): Promise<{ model: string; mmproj?: string } | null> {
  if (isGguf(source)) return { model: source, ...(mmproj ? { mmproj } : {}) };
  const entries = await readdir(source).catch(() => null);
  const ggufs = (entries ?? []).filter(isGguf).sort();
  if (!ggufs.length || entries?.includes('config.json')) return null;
  const projectors = ggufs.filter((f) => /^mmproj/i.test(f));
  const models = ggufs.filter((f) => !/^mmproj/i.test(f));
  if (models.length !== 1 || projectors.length > 1)
    throw new CheckpointError(
      `${source}: expected one language model .gguf and at most one mmproj*.gguf, found ${ggufs.join(', ')}; import the files by name (--mmproj)`,
    );
  return { model: join(source, models[0]), ...(projectors[0] ? { mmproj: join(source, projectors[0]) } : {}) };
}

export async function readGgufCheckpoint(modelPath: string, mmprojPath?: string): Promise<Checkpoint> {
  try {
    return await readChecked(modelPath, mmprojPath);
  } catch (e) {
    if (!(e instanceof GgufError || e instanceof ConfigError || e instanceof TokenizerError || e instanceof WeightError)) throw e;
    const named = e.message.includes(modelPath) || (mmprojPath !== undefined && e.message.includes(mmprojPath));
    throw new CheckpointError(named ? e.message : `${modelPath}: ${e.message}`);
  }
}

async function readChecked(modelPath: string, mmprojPath?: string): Promise<Checkpoint> {
  const model = await readGgufHeader(modelPath);
  const mmproj = mmprojPath ? await readGgufHeader(mmprojPath) : null;
  const meta = new GgufMetadata(model);
  if (mmproj && new GgufMetadata(mmproj).string('general.architecture', 'clip') !== 'clip')
    throw new CheckpointError(`${mmprojPath}: not a vision projector (general.architecture is not clip); pass the mmproj file to --mmproj`);
  if (meta.string('general.architecture') === 'clip')
    throw new CheckpointError(
      `${modelPath}: this is a vision projector (mmproj); import the language model GGUF with --mmproj ${basename(modelPath)}`,
    );

  const embedding = model.tensors.get('token_embd.weight');
  if (!embedding) throw new CheckpointError(`${modelPath}: no token_embd.weight tensor`);
  const tied = !model.tensors.has('output.weight');
  const text = ggufTextConfig(modelPath, meta, embedding.shape[0], tied);
  const vision = mmproj ? ggufVisionConfig(mmprojPath!, new GgufMetadata(mmproj), countBlocks(mmproj)) : null;

  const tokenizer = ggufTokenizerFiles(meta, vision !== null);
  const eosTokenId = meta.number('tokenizer.ggml.eos_token_id', null);
  if (eosTokenId === null) throw new CheckpointError(`${modelPath}: no tokenizer.ggml.eos_token_id`);
  const extraEos = [meta.number('tokenizer.ggml.eot_token_id', null)].filter((id): id is number => id !== null && id !== eosTokenId);
  const config: LlavaConfig & { eosTokenId: number } = {
    text,
    vision: vision?.vision ?? null,
    visionFeatureLayer: vision?.featureLayer ?? 0,
    visionFeatureSelectStrategy: 'default',
    // The placeholder is one past the vocabulary: the runtime splices the visual tokens in before anything embeds it.
    imageTokenIndex: tokenizer.imageTokenId ?? text.vocabSize,
    projectorBias: true,
    bosTokenId: meta.number('tokenizer.ggml.bos_token_id', null),
    eosTokenId,
    padTokenId: meta.number('tokenizer.ggml.padding_token_id', null),
    ...(vision?.gridPinpoints ? { anyres: { gridPinpoints: vision.gridPinpoints } } : {}),
  };

  const names = new WeightNames('unified', tied);
  const tensors = ggufWeights(config, model, mmproj, swappedFfn(mmproj, vision));
  checkTensors(expectedTensors(config, names), tensors.find, 'its metadata', 'GGUF tensor names');

  const chatTemplate = meta.string('tokenizer.chat_template', null);
  // The file's own template takes string contents (llama.cpp's); without one, LLaVA-1.5's default takes parts.
  const chatContent = chatTemplate ? 'text' : 'parts';
  const tokenizerJson = JSON.stringify(tokenizer.tokenizerJson);
  const tokenizerConfig = JSON.stringify(tokenizer.tokenizerConfig, null, 2);
  // The file's tokenizer patterns and template are its code: run on test texts under a budget, as for any checkpoint.
  exerciseTextSide(
    modelPath,
    TextTokenizer.fromJson(tokenizer.tokenizerJson, tokenizer.tokenizerConfig),
    chatTemplate,
    config.imageTokenIndex,
    {
      content: chatTemplate ? 'text' : 'parts',
      withImage: config.vision !== null,
    },
  );
  return {
    source: modelPath,
    layout: 'gguf',
    config,
    extraEosTokenIds: extraEos,
    tensors,
    names,
    image: vision ? imageParams(vision) : null,
    chatTemplate,
    chatContent,
    keepDtype: keepDtype(model),
    definingFiles: [
      { label: basename(modelPath), path: modelPath },
      ...(mmprojPath ? [{ label: basename(mmprojPath), path: mmprojPath }] : []),
    ],
    tokenizerFiles: [
      { name: 'tokenizer.json', text: tokenizerJson },
      { name: 'tokenizer_config.json', text: tokenizerConfig },
    ],
  };
}

/**
 * `--dtype keep`: the narrowest engine width that holds the file's matrices exactly or nearly, by which holds most of
 * the decoder's matrix bytes. Q4_0 -> int4 and Q8_0 -> int8 exactly (their blocks go to MatMulNBits as they are);
 * every other block type -> int8 (re-quantized: 0.2-0.6% relative RMS error, where int4 would add 3-10%, measured
 * in docs/gguf.md); F16/BF16 -> fp16; F32 -> fp32. `--dtype int4` still takes any file to int4.
 */
export function keepDtype(model: GgufFile): WeightDtype {
  const bytes = new Map<WeightDtype, number>();
  for (const t of model.tensors.values()) {
    if (!t.name.startsWith('blk.') || t.shape.length !== 2) continue;
    const width: WeightDtype = KEEP_WIDTH[t.type];
    bytes.set(width, (bytes.get(width) ?? 0) + t.byteLength);
  }
  return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'fp32';
}

const KEEP_WIDTH: Record<GgmlType, WeightDtype> = {
  F32: 'fp32',
  F16: 'fp16',
  BF16: 'fp16',
  Q4_0: 'int4',
  Q4_1: 'int8',
  Q4_K: 'int8',
  Q5_0: 'int8',
  Q5_1: 'int8',
  Q5_K: 'int8',
  Q6_K: 'int8',
  Q8_0: 'int8',
};

function countBlocks(mmproj: GgufFile): number {
  let blocks = 0;
  while (mmproj.tensors.has(`v.blk.${blocks}.attn_q.weight`)) blocks++;
  if (!blocks) throw new CheckpointError(`${mmproj.path}: no vision blocks (v.blk.0.attn_q.weight)`);
  return blocks;
}

/** The legacy converter named CLIP's fc1 ffn_down; told apart, as clip.cpp does, by which one widens. */
function swappedFfn(mmproj: GgufFile | null, vision: GgufVision | null): boolean {
  const down = mmproj?.tensors.get('v.blk.0.ffn_down.weight');
  return !!down && !!vision && down.shape[0] === vision.vision.intermediateSize && down.shape[1] === vision.vision.hiddenSize;
}

/** Weights by Hugging Face name, read from whichever file holds them; `find` says where one is, for the checks. */
function ggufWeights(
  config: LlavaConfig,
  model: GgufFile,
  mmproj: GgufFile | null,
  swapFfn: boolean,
): WeightSource & { find(name: string): FoundTensor | undefined } {
  const locate = (name: string) => {
    const source = ggufSourceOf(name, config.text, swapFfn);
    const file = source?.file === 'mmproj' ? mmproj : model;
    const tensor = source && file?.tensors.get(source.name);
    return tensor && source ? { file: file!, tensor, unpermuteHeads: source.unpermuteHeads } : null;
  };
  return {
    find: (name) => {
      const found = locate(name);
      return found ? { shape: found.tensor.shape, file: basename(found.file.path) } : undefined;
    },
    dims: (name) => {
      const found = locate(name);
      if (!found) throw new CheckpointError(`tensor "${name}" has no counterpart in the GGUF`);
      return found.tensor.shape;
    },
    readF32: async (name) => {
      const found = locate(name);
      if (!found) throw new CheckpointError(`tensor "${name}" has no counterpart in the GGUF`);
      const data = await readGgufTensorF32(found.file, found.tensor);
      const [rows, cols] = found.tensor.shape;
      return found.unpermuteHeads ? unpermuteRows(data, rows, cols, found.unpermuteHeads) : data;
    },
    exact: (name, bits) => {
      const found = locate(name);
      const type = found?.tensor.type;
      if (!found || !((type === 'Q4_0' && bits === 4) || (type === 'Q8_0' && bits === 8))) return null;
      return {
        blockSize: 32,
        read: async () => {
          const [rows, cols] = found.tensor.shape;
          let bytes = await readGgufTensorBytes(found.file, found.tensor);
          if (found.unpermuteHeads) bytes = unpermuteRows(bytes, rows, bytes.length / rows, found.unpermuteHeads);
          return toMatMulNBits(type, bytes, rows, cols);
        },
      };
    },
  };
}

/**
 * CLIPImageProcessor's parameters with the file's mean and std. A LLaVA-1.5 image is padded to a square in the
 * mean colour first, as llama.cpp's clip.cpp (and the original LLaVA) does; LLaVA-NeXT tiles it (AnyRes).
 */
function imageParams(vision: GgufVision): ImageParams {
  const side = vision.vision.imageSize;
  return {
    do_resize: true,
    size: { shortest_edge: side },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: side, width: side },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: vision.imageMean,
    image_std: vision.imageStd,
    image_aspect_ratio: vision.gridPinpoints ? 'crop' : 'pad',
  };
}
