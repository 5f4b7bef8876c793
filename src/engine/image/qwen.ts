// Qwen2-VL's image processor (transformers' Qwen2VLImageProcessorPil), which Qwen2.5-VL uses:
//   1. decode as for CLIP (validate.ts, decodeRgb), then smart_resize: both sides to multiples of
//      patch_size * merge_size (28 px), the pixel count within [min_pixels, max_pixels], the aspect ratio kept;
//   2. resize with Pillow's bicubic (resample.ts), rescale and normalize (clipPixels, no crop);
//   3. patchify: one row per 14 px patch, the patches of each 2 x 2 merged cell together (cells row by row),
//      each row the patch's channels x 2 frames (the image repeated in time) x 14 x 14 pixels.
// Also what the vision graph needs beside the patches: each patch's (row, column) for the 2D rotary positions,
// and the window each patch attends within (window attention).

import { DEFAULT_IMAGE_LIMITS, ImageError, validateImage, type ImageLimits } from './validate.js';
import { clipPixels, decodeRgb, imageHash, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from './preprocess.js';

export interface QwenImageParams {
  minPixels: number;
  maxPixels: number;
  patchSize: number;
  mergeSize: number;
  temporalPatchSize: number;
  rescaleFactor: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** The merged grid in transformers' image_grid_thw terms: t frames of h x w patches (14 px). */
export interface GridThw {
  t: number;
  h: number;
  w: number;
}

export interface QwenPreparedImage {
  /** [P, channels * temporalPatchSize * patchSize^2], P = h * w patches in merged-cell order. */
  patches: Float32Array;
  patchDim: number;
  grid: GridThw;
  /** Each patch's (row, column) in the patch grid, interleaved [P, 2]: the vision tower's 2D rotary positions. */
  patchPositions: Int32Array;
  /** Window attention's layout (windowLayout): the windows' patches side by side, and where each patch went. */
  windows: WindowLayout;
  /** smart_resize's output size. */
  width: number;
  height: number;
  originalWidth: number;
  originalHeight: number;
  hash: string;
}

type Json = Record<string, unknown>;

/** Reads a Qwen2-VL preprocessor_config.json (defaults as in transformers; `size` or the older min_pixels/max_pixels). */
export function parseQwenImageParams(json: Json): QwenImageParams {
  const size = (json.size ?? {}) as Json;
  const num = (value: unknown, fallback: number, what: string): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'number' && value > 0) return value;
    throw new Error(`preprocessor_config.json: ${what} must be a positive number`);
  };
  const triple = (value: unknown, fallback: [number, number, number]) =>
    (Array.isArray(value) && value.length === 3 ? value : fallback) as [number, number, number];
  return {
    minPixels: num(json.min_pixels ?? size.shortest_edge, 56 * 56, 'size.shortest_edge (min_pixels)'),
    maxPixels: num(json.max_pixels ?? size.longest_edge, 28 * 28 * 1280, 'size.longest_edge (max_pixels)'),
    patchSize: num(json.patch_size, 14, 'patch_size'),
    mergeSize: num(json.merge_size, 2, 'merge_size'),
    temporalPatchSize: num(json.temporal_patch_size, 2, 'temporal_patch_size'),
    rescaleFactor: json.do_rescale === false ? 1 : num(json.rescale_factor, 1 / 255, 'rescale_factor'),
    mean: triple(json.image_mean, OPENAI_CLIP_MEAN),
    std: triple(json.image_std, OPENAI_CLIP_STD),
  };
}

/** Python's round(): halves to even, as smart_resize computes with it. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** transformers' smart_resize: [height, width], multiples of `factor`, pixel count within [minPixels, maxPixels]. */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number): [number, number] {
  if (Math.max(height, width) / Math.min(height, width) > 200)
    throw new ImageError('too-large', `The image's aspect ratio ${Math.max(height, width) / Math.min(height, width)} is above 200.`);
  let h = roundHalfEven(height / factor) * factor;
  let w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}

/** The merged cells' grid (image tokens rows x columns) for an image of this size. */
export function qwenTokenGrid(width: number, height: number, p: QwenImageParams): { rows: number; cols: number } {
  const cell = p.patchSize * p.mergeSize;
  const [h, w] = smartResize(height, width, cell, p.minPixels, p.maxPixels);
  return { rows: h / cell, cols: w / cell };
}

/**
 * CHW pixels [C, H, W] -> patch rows in the processor's order: cells (H/28 x W/28) row-major, the 2 x 2 patches of a
 * cell row-major, and within a patch (channel, frame, y, x); every frame is the same image.
 */
export function patchify(pixels: Float32Array, channels: number, height: number, width: number, p: QwenImageParams) {
  const { patchSize: ps, mergeSize: m, temporalPatchSize: tp } = p;
  const gh = height / ps;
  const gw = width / ps;
  const patchDim = channels * tp * ps * ps;
  const patches = new Float32Array(gh * gw * patchDim);
  const patchPositions = new Int32Array(gh * gw * 2);
  let row = 0;
  for (let cr = 0; cr < gh / m; cr++)
    for (let cc = 0; cc < gw / m; cc++)
      for (let dy = 0; dy < m; dy++)
        for (let dx = 0; dx < m; dx++, row++) {
          const py = cr * m + dy;
          const px = cc * m + dx;
          patchPositions[2 * row] = py;
          patchPositions[2 * row + 1] = px;
          let o = row * patchDim;
          for (let c = 0; c < channels; c++)
            for (let t = 0; t < tp; t++)
              for (let y = 0; y < ps; y++) {
                const from = c * height * width + (py * ps + y) * width + px * ps;
                patches.set(pixels.subarray(from, from + ps), o);
                o += ps;
              }
        }
  return { patches, patchDim, grid: { t: 1, h: gh, w: gw }, patchPositions };
}

/**
 * Window attention's windows (transformers' get_vision_window_index): squares of `cellsPerWindow` x `cellsPerWindow`
 * merged cells from the top left corner, the last row and column of windows cut short. `slots` lists each window's
 * patches (its cells row by row, each cell's patches together), every window padded to the full window's
 * `windowPatches` with the index P (a row of zeros in the graph); `patchSlots` says where each patch went.
 */
export interface WindowLayout {
  slots: Int32Array;
  patchSlots: Int32Array;
  windowPatches: number;
}

export function windowLayout(grid: GridThw, mergeSize: number, cellsPerWindow: number): WindowLayout {
  const rows = grid.h / mergeSize;
  const cols = grid.w / mergeSize;
  const unit = mergeSize * mergeSize;
  const windowPatches = cellsPerWindow * cellsPerWindow * unit;
  const patches = rows * cols * unit;
  const windows = Math.ceil(rows / cellsPerWindow) * Math.ceil(cols / cellsPerWindow);
  const slots = new Int32Array(windows * windowPatches).fill(patches);
  const patchSlots = new Int32Array(patches);
  let window = 0;
  for (let r0 = 0; r0 < rows; r0 += cellsPerWindow)
    for (let c0 = 0; c0 < cols; c0 += cellsPerWindow, window++) {
      let slot = window * windowPatches;
      for (let r = r0; r < Math.min(rows, r0 + cellsPerWindow); r++)
        for (let c = c0; c < Math.min(cols, c0 + cellsPerWindow); c++)
          for (let u = 0; u < unit; u++, slot++) {
            const patch = (r * cols + c) * unit + u;
            slots[slot] = patch;
            patchSlots[patch] = slot;
          }
    }
  return { slots, patchSlots, windowPatches };
}

/** Validates, decodes and preprocesses one image for the Qwen2.5 vision tower. `windowSize` in pixels (the vision config's). */
export async function preprocessQwen(
  buffer: Uint8Array,
  params: QwenImageParams,
  windowSize: number,
  limits: Partial<ImageLimits> = DEFAULT_IMAGE_LIMITS,
  signal?: AbortSignal,
): Promise<QwenPreparedImage> {
  const info = await validateImage(buffer, limits);
  signal?.throwIfAborted();
  const cell = params.patchSize * params.mergeSize;
  const [height, width] = smartResize(info.height, info.width, cell, params.minPixels, params.maxPixels);
  const decoded = await decodeRgb(buffer, info, { width, height }, limits.maxPixels ?? DEFAULT_IMAGE_LIMITS.maxPixels);
  signal?.throwIfAborted();
  const clip = {
    resize: { width, height },
    crop: null,
    padColour: null,
    rescaleFactor: params.rescaleFactor,
    mean: params.mean,
    std: params.std,
  };
  const { pixels } = await clipPixels(decoded, { width, height }, clip, signal);
  const patched = patchify(pixels, 3, height, width, params);
  return {
    ...patched,
    windows: windowLayout(patched.grid, params.mergeSize, windowSize / cell),
    width,
    height,
    originalWidth: info.width,
    originalHeight: info.height,
    hash: imageHash(buffer),
  };
}
