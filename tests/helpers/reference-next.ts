// Float64 reference of LLaVA-NeXT's AnyRes: the views the processor cuts an image into and the visual
// tokens the model packs from their features. Written to be read next to transformers'
// image_processing_pil_llava_next.py (select_best_resolution, get_patch_output_size, _pad_for_patching,
// divide_to_patches) and modeling_llava_next.py (pack_image_features, unpad_image), in their own
// terms (views, permutes, slices), not in the engine's (a token layout). Only PIL's bicubic resize is
// borrowed from the engine (src/engine/image/resample.ts), which is checked against transformers'
// pixel values separately.
import { resizeBicubic } from '../../src/engine/image/resample.js';
import { zeros, type Mat } from './reference-math.js';
import { referenceVision, type ReferenceModel } from './reference.js';

export interface ReferenceImageParams {
  /** size.shortest_edge: the base view is resized to this square. */
  shortestEdge: number;
  /** crop_size: the tile side (= the vision tower's image_size). */
  tile: number;
  mean: readonly number[];
  std: readonly number[];
}

/** transformers' select_best_resolution over [height, width] pairs; returns [height, width]. */
export function referenceBestResolution(height: number, width: number, pinpoints: readonly [number, number][]): [number, number] {
  let best: [number, number] = pinpoints[0];
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [h, w] of pinpoints) {
    const scale = Math.min(w / width, h / height);
    const effective = Math.min(Math.floor(width * scale) * Math.floor(height * scale), width * height);
    const wasted = w * h - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = [h, w];
    }
  }
  return best;
}

/** rescale + normalize of an HWC uint8 image into CHW float64. */
function normalizeChw(rgb: Uint8Array, width: number, height: number, p: ReferenceImageParams): Float64Array {
  const out = new Float64Array(3 * width * height);
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < width * height; i++) out[c * width * height + i] = (rgb[i * 3 + c] / 255 - p.mean[c]) / p.std[c];
  return out;
}

/** The processor's pixel_values for one image (HWC uint8 RGB): [base, tiles row-major], each [3, tile, tile]. */
export function referenceAnyresViews(
  rgb: Uint8Array,
  width: number,
  height: number,
  pinpoints: readonly [number, number][],
  p: ReferenceImageParams,
): { views: Float64Array[]; best: [number, number] } {
  if (p.shortestEdge !== p.tile) throw new Error('reference: tiles would be resized again (shortest_edge != crop size)');
  const [bh, bw] = referenceBestResolution(height, width, pinpoints);
  // get_patch_output_size
  const scaleW = bw / width;
  const scaleH = bh / height;
  const [nh, nw] = scaleW < scaleH ? [Math.min(Math.ceil(height * scaleW), bh), bw] : [bh, Math.min(Math.ceil(width * scaleH), bw)];
  const resized = resizeBicubic(rgb, width, height, 3, nw, nh);
  // _pad_for_patching: divmod(target - new, 2) before, the rest after, zeros.
  const padY = Math.floor((bh - nh) / 2);
  const padX = Math.floor((bw - nw) / 2);
  const padded = new Uint8Array(bw * bh * 3);
  for (let y = 0; y < nh; y++) padded.set(resized.subarray(y * nw * 3, (y + 1) * nw * 3), ((y + padY) * bw + padX) * 3);
  const base = resizeBicubic(rgb, width, height, 3, p.shortestEdge, p.shortestEdge);
  const views = [normalizeChw(base, p.shortestEdge, p.shortestEdge, p)];
  // divide_to_patches: for i in range(0, height, tile): for j in range(0, width, tile)
  for (let i = 0; i < bh; i += p.tile) {
    for (let j = 0; j < bw; j += p.tile) {
      const patch = new Uint8Array(p.tile * p.tile * 3);
      for (let y = 0; y < p.tile; y++) patch.set(padded.subarray(((i + y) * bw + j) * 3, ((i + y) * bw + j + p.tile) * 3), y * p.tile * 3);
      views.push(normalizeChw(patch, p.tile, p.tile, p));
    }
  }
  return { views, best: [bh, bw] };
}

/**
 * pack_image_features for one image: base features first, then the tile features viewed as
 * [nph, npw, h, w, D], permuted to [D, nph*h, npw*w], unpadded to the image's aspect ratio, a newline
 * column appended, flattened row by row.
 */
export function referencePackNext(model: ReferenceModel, viewFeatures: Mat[], height: number, width: number): Mat {
  const grid = model.vision.imageSize / model.vision.patchSize;
  const [bh, bw] = referenceBestResolution(height, width, model.gridPinpoints!);
  const nph = bh / model.vision.imageSize;
  const npw = bw / model.vision.imageSize;
  const D = viewFeatures[0].cols;
  const rows = nph * grid;
  const cols = npw * grid;
  // canvas[d][i*h + r][j*w + c] = tiles[i*npw + j][r*w + c][d]
  const canvas = (d: number, y: number, x: number) => {
    const tile = viewFeatures[1 + Math.floor(y / grid) * npw + Math.floor(x / grid)];
    return tile.data[((y % grid) * grid + (x % grid)) * D + d];
  };
  // unpad_image(tensor [D, rows, cols], (height, width)), with int(round(v, 7))
  let [top, bottom, left, right] = [0, rows, 0, cols];
  if (width / height > cols / rows) {
    const newHeight = Math.trunc(Number((height * (cols / width)).toFixed(7)));
    const padding = Math.floor((rows - newHeight) / 2);
    [top, bottom] = [padding, rows - padding];
  } else {
    const newWidth = Math.trunc(Number((width * (rows / height)).toFixed(7)));
    const padding = Math.floor((cols - newWidth) / 2);
    [left, right] = [padding, cols - padding];
  }
  const newline = model.weight('image_newline').data;
  const tokens = zeros(grid * grid + (bottom - top) * (right - left + 1), D);
  tokens.data.set(viewFeatures[0].data, 0);
  let t = grid * grid;
  for (let y = top; y < bottom; y++) {
    for (let x = left; x < right; x++, t++) for (let d = 0; d < D; d++) tokens.data[t * D + d] = canvas(d, y, x);
    tokens.data.set(newline, t * D);
    t++;
  }
  return tokens;
}

/** The visual tokens of one image (HWC uint8 RGB) as LlavaNextForConditionalGeneration feeds them to the decoder. */
export function referenceNextVisualTokens(
  model: ReferenceModel,
  rgb: Uint8Array,
  width: number,
  height: number,
  p: ReferenceImageParams,
): { tokens: Mat; views: Float64Array[] } {
  const { views } = referenceAnyresViews(rgb, width, height, model.gridPinpoints!, p);
  const features = views.map((view) => referenceVision(model, view).imageFeatures);
  return { tokens: referencePackNext(model, features, height, width), views };
}
