import type { QwenPreparedImage } from '../image/qwen.js';
import { floatTensor, int64Tensor, visionSession, type ModelSessions } from './graphs.js';
import type { VisualTokens } from './prefill.js';

/**
 * The merged visual tokens of one Qwen2.5-VL image [N, D] (N = merged cells, row by row), with the cells' grid the
 * decoder's M-RoPE positions follow from.
 */
export async function encodeQwenImage(
  model: Pick<ModelSessions, 'vision'>,
  image: QwenPreparedImage,
  mergeSize: number,
): Promise<VisualTokens> {
  const patches = image.grid.h * image.grid.w;
  const out = await visionSession(model).run({
    patches: floatTensor(image.patches, [patches, image.patchDim]),
    patch_positions: int64Tensor(image.patchPositions, [patches, 2]),
    window_ids: int64Tensor(image.windowIds, [patches]),
  });
  const features = out.image_features;
  return {
    features: features.data as Float32Array,
    count: features.dims[1],
    grid: { rows: image.grid.h / mergeSize, cols: image.grid.w / mergeSize },
    markersAfter: 1, // the chat template closes the image with <|vision_end|>
  };
}
