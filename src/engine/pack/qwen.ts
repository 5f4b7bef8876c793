// A Qwen2.5-VL checkpoint's pack (checkpoint.ts reads and checks the folder): its manifest and its graphs:
// vision.onnx (the Qwen2.5 ViT + merger, onnx/graphs/qwen-vision.ts) and the same text-side graphs as LLaVA packs
// (embed, layer_NN + probe_NN with q/k/v biases and M-RoPE, head), one weight file per graph.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { qwenTokenGrid } from '../image/qwen.js';
import type { WeightReader } from '../onnx/blocks.js';
import { buildDecoderLayer, layerGraphName } from '../onnx/graphs/decoder-layer.js';
import { buildEmbed, buildHead } from '../onnx/graphs/embed-head.js';
import { buildProbe, probeGraphName } from '../onnx/graphs/probe.js';
import { buildQwenVision, type QwenGraphSource } from '../onnx/graphs/qwen-vision.js';
import { WeightFile, type WeightDtype } from '../onnx/weight-file.js';
import type { QwenCheckpoint } from './checkpoint.js';
import type { BuiltGraphs, ManifestFields } from './graph-set.js';
import { PACK_FORMAT_VERSION, type PackManifest } from './manifest.js';

/**
 * The manifest of a Qwen2.5-VL pack. The visual token count depends on the image: numVisualTokens is the most
 * max_pixels allows (one per 28 x 28 px), patchGrid a square image's grid within that budget.
 */
export function makeQwenManifest(checkpoint: QwenCheckpoint, p: ManifestFields): PackManifest {
  const { image } = checkpoint;
  const side = Math.floor(Math.sqrt(image.maxPixels));
  const grid = qwenTokenGrid(side, side, image);
  return {
    formatVersion: PACK_FORMAT_VERSION,
    id: p.id,
    name: p.name,
    created: new Date().toISOString(),
    source: { path: p.source, sha256: p.sourceSha, layout: 'qwen2_5_vl' },
    dtype: p.dtype,
    weightsSha256: p.weightsSha256,
    config: checkpoint.config,
    extraEosTokenIds: checkpoint.extraEosTokenIds,
    numVisualTokens: Math.floor(image.maxPixels / (image.patchSize * image.mergeSize) ** 2),
    patchGrid: grid,
    image: checkpoint.image,
    chatTemplate: checkpoint.chatTemplate,
    graphs: p.graphs,
    ...(p.pruning ? { pruning: p.pruning } : {}),
  };
}

/**
 * Writes every graph and its weight file into `dir`; probe_NN shares layer_NN's weight file. Quantized packs keep
 * the vision tower at int8 with float inputs and the embedding table fp16, as LLaVA packs do (import.ts).
 */
export async function writeQwenGraphs(
  checkpoint: Pick<QwenCheckpoint, 'config' | 'names' | 'tensors'>,
  dir: string,
  dtype: WeightDtype,
  onGraph?: (done: number, total: number, name: string) => void,
  signal?: AbortSignal,
): Promise<BuiltGraphs> {
  const { tensors } = checkpoint;
  const reader: WeightReader = {
    read: async (name) => {
      signal?.throwIfAborted();
      return { data: await tensors.readF32(name), dims: tensors.dims(name) };
    },
    dims: (name) => tensors.dims(name),
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
