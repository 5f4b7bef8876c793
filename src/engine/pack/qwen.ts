// A Hugging Face Qwen2.5-VL checkpoint folder (model_type qwen2_5_vl), read and validated in full, and its graphs:
// vision.onnx (the Qwen2.5 ViT + merger, onnx/graphs/qwen-vision.ts) and the same text-side graphs as LLaVA packs
// (embed, layer_NN + probe_NN with q/k/v biases and M-RoPE, head), one weight file per graph.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TensorSet } from '../io/safetensors.js';
import { parseQwenImageParams, type QwenImageParams } from '../image/qwen.js';
import { parseQwenConfig, type QwenVLConfig } from '../model/qwen-config.js';
import { checkQwenTensors, type QwenWeightNames } from '../model/qwen-weights.js';
import type { WeightReader } from '../onnx/blocks.js';
import { buildDecoderLayer, layerGraphName } from '../onnx/graphs/decoder-layer.js';
import { buildEmbed, buildHead } from '../onnx/graphs/embed-head.js';
import { buildProbe, probeGraphName } from '../onnx/graphs/probe.js';
import { buildQwenVision, type QwenGraphSource } from '../onnx/graphs/qwen-vision.js';
import { WeightFile, type WeightDtype } from '../onnx/weight-file.js';

export interface QwenCheckpoint {
  dir: string;
  config: QwenVLConfig;
  tensors: TensorSet;
  names: QwenWeightNames;
  image: QwenImageParams;
}

export async function readQwenCheckpoint(dir: string): Promise<QwenCheckpoint> {
  const config = parseQwenConfig(await readFile(join(dir, 'config.json'), 'utf8'), join(dir, 'config.json'));
  const tensors = await TensorSet.openFolder(dir);
  const names = checkQwenTensors(config, tensors);
  const preprocessor = JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
  const image = parseQwenImageParams(preprocessor);
  const v = config.vision;
  if (image.patchSize !== v.patchSize || image.mergeSize !== v.spatialMergeSize || image.temporalPatchSize !== v.temporalPatchSize)
    throw new Error(`${dir}: preprocessor_config.json's patch, merge or temporal patch size differs from config.json's vision_config`);
  return { dir, config, tensors, names, image };
}

export interface QwenGraphs {
  graphs: { embed: string; vision: string; head: string; layers: string[]; probes: string[] };
  weightsSha256: Record<string, string>;
}

/**
 * Writes every graph and its weight file into `dir`; probe_NN shares layer_NN's weight file. Quantized packs keep
 * the vision tower at int8 with float inputs and the embedding table fp16, as LLaVA packs do (import.ts).
 */
export async function writeQwenGraphs(
  checkpoint: QwenCheckpoint,
  dir: string,
  dtype: WeightDtype,
  onGraph?: (done: number, total: number, name: string) => void,
  signal?: AbortSignal,
): Promise<QwenGraphs> {
  const { tensors } = checkpoint;
  const reader: WeightReader = {
    read: async (name) => {
      signal?.throwIfAborted();
      return { data: await tensors.readF32(name), dims: tensors.get(name)!.shape };
    },
    dims: (name) => tensors.get(name)!.shape,
  };
  const src: QwenGraphSource = { config: checkpoint.config, names: checkpoint.names, reader };
  const numLayers = checkpoint.config.text.numLayers;
  const weightsSha256: Record<string, string> = {};
  let done = 0;
  const write = async (
    base: string,
    fileDtype: WeightDtype,
    graphs: [string, (f: WeightFile) => Promise<Uint8Array>][],
    int8Activations = true,
  ) => {
    onGraph?.(done, numLayers + 3, base);
    const file = new WeightFile(join(dir, `${base}.bin`), fileDtype, { int8Activations });
    try {
      for (const [graphName, build] of graphs) await writeFile(join(dir, `${graphName}.onnx`), await build(file), { flush: true });
    } finally {
      weightsSha256[file.location] = file.close();
    }
    done++;
  };

  const floatDtype: WeightDtype = dtype === 'fp32' ? 'fp32' : 'fp16';
  const visionDtype: WeightDtype = dtype === 'int4' || dtype === 'int8' ? 'int8' : floatDtype;
  await write('vision', visionDtype, [['vision', (f) => buildQwenVision(src, f)]], false);
  await write('embed', floatDtype, [['embed', (f) => buildEmbed(src, f)]]);
  for (let layer = 0; layer < numLayers; layer++) {
    const base = layerGraphName(layer);
    await write(base, dtype, [
      [base, (f) => buildDecoderLayer(src, layer, f)],
      [probeGraphName(layer), (f) => buildProbe(src, layer, f)],
    ]);
  }
  await write('head', dtype, [['head', (f) => buildHead(src, f)]]);
  const layers = Array.from({ length: numLayers }, (_, l) => `${layerGraphName(l)}.onnx`);
  const probes = Array.from({ length: numLayers }, (_, l) => `${probeGraphName(l)}.onnx`);
  return { graphs: { embed: 'embed.onnx', vision: 'vision.onnx', head: 'head.onnx', layers, probes }, weightsSha256 };
}
