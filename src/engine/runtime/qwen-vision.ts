import { singleViewLayout } from '../../shared/trace.js';
import type { QwenPreparedImage } from '../image/qwen.js';
import { floatTensor, int64Tensor, visionSession, type ModelSessions } from './graphs.js';
import type { VisualTokens } from './prefill.js';
import type { EncodedVisual } from './vision.js';

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
    window_slots: int64Tensor(image.windows.slots, [image.windows.slots.length]),
    patch_slots: int64Tensor(image.windows.patchSlots, [patches]),
  });
  const features = out.image_features;
  return {
    features: features.data as Float32Array,
    count: features.dims[1],
    grid: { rows: image.grid.h / mergeSize, cols: image.grid.w / mergeSize },
    markersAfter: 1, // the chat template closes the image with <|vision_end|>
  };
}

/** encodeQwenImage with where the tokens came from: one view over the whole image (smart_resize keeps all of it), its merged grid. */
export async function encodeQwenVisual(
  model: Pick<ModelSessions, 'vision'>,
  image: QwenPreparedImage,
  mergeSize: number,
): Promise<EncodedVisual> {
  const tokens = await encodeQwenImage(model, image, mergeSize);
  const rect = { x: 0, y: 0, width: image.originalWidth, height: image.originalHeight };
  return { ...tokens, layout: singleViewLayout(rect, tokens.grid!), views: 1 };
}
