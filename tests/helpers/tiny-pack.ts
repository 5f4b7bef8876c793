// A tiny checkpoint imported into a real pack and loaded on the CPU, with one image question
// encoded for prefill: the fixture of the runtime and pruning tests that compare against the
// float64 reference.

import { join } from 'node:path';
import type { WeightDtype } from '../../src/engine/onnx/weight-file.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { encodeImage } from '../../src/engine/runtime/graphs.js';
import { LoadedModel } from '../../src/engine/runtime/model.js';
import type { PrefillInput } from '../../src/engine/runtime/prefill.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpointOptions } from '../../src/engine/checkpoint/synthetic.js';

export interface TinyPackOptions extends Omit<SyntheticCheckpointOptions, 'dtype'> {
  /** The checkpoint's dtype, imported as a pack of the same dtype (default fp32). */
  dtype?: 'fp32' | 'fp16';
  /** The pack's dtype when it differs from the checkpoint's (int8, int4). */
  packDtype?: WeightDtype;
  /** Pack name in the store. */
  name: string;
  /** The question asked about the image. */
  question: string;
  /** The image in CLIP-normalised range, [3, size, size], for the model's image size. */
  pixels: (size: number) => Float32Array;
}

export interface TinyPack {
  /** The Hugging Face-style checkpoint folder (what the reference loads). */
  checkpoint: string;
  /** The imported pack's folder. */
  dir: string;
  model: LoadedModel;
  pixels: Float32Array;
  input: PrefillInput;
}

/** Writes the checkpoint to `<root>/<name>`, imports it into `<root>/store` (the checkpoint's dtype) and loads it. */
export async function makeTinyPack(
  root: string,
  { name, question, pixels: makePixels, packDtype, ...checkpointOptions }: TinyPackOptions,
): Promise<TinyPack> {
  const checkpoint = join(root, name);
  await makeSyntheticCheckpoint(checkpoint, checkpointOptions);
  const { dir } = await importCheckpoint(checkpoint, join(root, 'store'), { name, dtype: packDtype ?? checkpointOptions.dtype ?? 'fp32' });
  const model = await LoadedModel.load(dir, { ep: 'cpu' });
  const size = model.config.vision!.imageSize;
  const pixels = makePixels(size);
  const { ids } = encodeChat(model.tokenizer, [{ role: 'user', text: question, image: true }], {
    template: model.chatTemplate,
    imageTokenId: model.config.imageTokenIndex,
  });
  const input = { ids, imageTokenId: model.config.imageTokenIndex, visual: await encodeImage(model, pixels, size) };
  return { checkpoint, dir, model, pixels, input };
}
