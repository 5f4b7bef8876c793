// A Qwen2.5-VL checkpoint's pack manifest (checkpoint.ts reads and checks the folder; import.ts writes the graphs:
// vision.onnx from onnx/graphs/qwen-vision.ts, the text side as for LLaVA with q/k/v biases and M-RoPE).

import { qwenTokenGrid } from '../image/qwen.js';
import type { QwenCheckpoint } from './checkpoint.js';
import type { ManifestFields } from './graph-set.js';
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
