import { singleViewLayout, type VisualLayout, type VisualTile } from '../../shared/trace.js';
import { clipPixels, decodeRgb, frame, framing, imageHash, resizedSize, runSteps, type ClipParams } from './preprocess.js';
import { resizeBicubicRegion } from './resample.js';
import { DEFAULT_IMAGE_LIMITS, validateImage, type ImageFormat, type ImageLimits } from './validate.js';

/**
 * LLaVA-NeXT's AnyRes, as transformers' LlavaNextImageProcessor (PIL backend) and LlavaNextModel do it:
 *   1. pick the best resolution of `image_grid_pinpoints` (most of the image's pixels kept, then least waste);
 *   2. resize the image into it keeping the aspect ratio (the fitted side exact, the other ceil'ed), pad it
 *      centered with black to the full resolution, cut it into tile x tile views, row-major;
 *   3. the base view: the whole image resized (stretched) to the square; base first, then the tiles;
 *   4. each view through the CLIP pipeline (resize, crop, normalize) and the vision tower;
 *   5. the tiles' feature grids joined into one canvas, the padding rows or columns cut away again
 *      ("unpad", from the original aspect ratio), and `image_newline` after every canvas row.
 * The token order is the base view's grid, then the unpadded canvas row by row, each row followed by its
 * newline. `anyresLayout` describes that order; `packVisualTokens` builds the sequence from it.
 */

export interface Size {
  width: number;
  height: number;
}

/** transformers' select_best_resolution: pinpoints are [height, width]. */
export function selectBestResolution(image: Size, pinpoints: readonly (readonly [number, number])[]): Size {
  let best: Size | null = null;
  let bestEffective = 0;
  let leastWasted = Number.POSITIVE_INFINITY;
  for (const [height, width] of pinpoints) {
    const scale = Math.min(width / image.width, height / image.height);
    const effective = Math.min(Math.trunc(image.width * scale) * Math.trunc(image.height * scale), image.width * image.height);
    const wasted = width * height - effective;
    if (effective > bestEffective || (effective === bestEffective && wasted < leastWasted)) {
      bestEffective = effective;
      leastWasted = wasted;
      best = { width, height };
    }
  }
  if (!best) throw new Error('no image_grid_pinpoints to choose from');
  return best;
}

/** transformers' get_patch_output_size: the image resized to fit `target`, aspect ratio kept. */
export function fitWithin(image: Size, target: Size): Size {
  const scaleW = target.width / image.width;
  const scaleH = target.height / image.height;
  return scaleW < scaleH
    ? { width: target.width, height: Math.min(Math.ceil(image.height * scaleW), target.height) }
    : { width: Math.min(Math.ceil(image.width * scaleH), target.width), height: target.height };
}

export interface AnyresPlan {
  /** The chosen resolution (a pinpoint). */
  target: Size;
  /** The image resized into it, and where it sits: the padding before it (the rest goes after). */
  resized: Size;
  left: number;
  top: number;
  tileRows: number;
  tileCols: number;
}

export function planAnyres(image: Size, pinpoints: readonly (readonly [number, number])[], tileSize: number): AnyresPlan {
  const target = selectBestResolution(image, pinpoints);
  const resized = fitWithin(image, target);
  return {
    target,
    resized,
    left: Math.floor((target.width - resized.width) / 2),
    top: Math.floor((target.height - resized.height) / 2),
    tileRows: target.height / tileSize,
    tileCols: target.width / tileSize,
  };
}

/** Python's int(round(x, 7)) for the positive values unpadding sees: rounding off float noise before truncating. */
const truncateRounded = (x: number) => Math.trunc(Math.round(x * 1e7) / 1e7);

/**
 * transformers' unpad_image on a rows x cols feature canvas: the rows (or columns) that came from padding,
 * judged by the original image's aspect ratio, are cut symmetrically. Returns the kept window.
 */
export function unpadWindow(image: Size, rows: number, cols: number): { top: number; left: number; rows: number; cols: number } {
  if (image.width / image.height > cols / rows) {
    const padding = Math.floor((rows - truncateRounded(image.height * (cols / image.width))) / 2);
    return { top: padding, left: 0, rows: rows - 2 * padding, cols };
  }
  const padding = Math.floor((cols - truncateRounded(image.width * (rows / image.height))) / 2);
  return { top: 0, left: padding, rows, cols: cols - 2 * padding };
}

/** The visual tokens of an AnyRes image: base grid, then the unpadded canvas row by row with a newline after each row. */
export function anyresLayout(image: Size, plan: AnyresPlan, tileSize: number, grid: number): VisualLayout {
  // A view's square maps back to the original image through the resize (and, for tiles, the padding offset).
  const sx = image.width / plan.resized.width;
  const sy = image.height / plan.resized.height;
  const tiles: VisualTile[] = [
    { kind: 'base', row: 0, col: 0, grid: { rows: grid, cols: grid }, rect: { x: 0, y: 0, width: image.width, height: image.height } },
  ];
  for (let row = 0; row < plan.tileRows; row++) {
    for (let col = 0; col < plan.tileCols; col++) {
      const rect = {
        x: (col * tileSize - plan.left) * sx,
        y: (row * tileSize - plan.top) * sy,
        width: tileSize * sx,
        height: tileSize * sy,
      };
      tiles.push({ kind: 'tile', row, col, grid: { rows: grid, cols: grid }, rect });
    }
  }
  // The base view stretches the whole image; the tiles cover the padded canvas.
  const { tokens } = singleViewLayout(tiles[0].rect, tiles[0].grid);
  const window = unpadWindow(image, plan.tileRows * grid, plan.tileCols * grid);
  const tileAt = (canvasRow: number, canvasCol: number) => 1 + Math.floor(canvasRow / grid) * plan.tileCols + Math.floor(canvasCol / grid);
  for (let r = window.top; r < window.top + window.rows; r++) {
    for (let c = window.left; c < window.left + window.cols; c++) {
      tokens.kind.push('tile');
      tokens.tile.push(tileAt(r, c));
      tokens.row.push(r % grid);
      tokens.col.push(c % grid);
    }
    tokens.kind.push('newline');
    tokens.tile.push(tileAt(r, window.left + window.cols - 1));
    tokens.row.push(r % grid);
    tokens.col.push(grid);
  }
  return { tiles, tokens };
}

/** The base view's square size: preprocessor `size` as {height, width}, or shortest_edge x shortest_edge. */
export function baseViewSize(params: ClipParams, fallback: number): Size {
  const resize = params.resize;
  if (!resize) return { width: fallback, height: fallback };
  return 'shortestEdge' in resize ? { width: resize.shortestEdge, height: resize.shortestEdge } : resize;
}

/**
 * The CHW float32 views of one decoded image, base first, then the tiles row-major (steps 1-4). `decoded`
 * may be a reduced copy of a very large `image` (decodeRgb); the resizes read it, the plan uses `image`.
 */
export async function anyresViews(
  decoded: { rgb: Uint8Array; width: number; height: number },
  plan: AnyresPlan,
  tileSize: number,
  params: ClipParams,
  signal?: AbortSignal,
): Promise<Float32Array[]> {
  const whole = (size: Size) =>
    runSteps(
      resizeBicubicRegion(decoded.rgb, decoded.width, decoded.height, 3, size.width, size.height, { left: 0, top: 0, ...size }),
      signal,
    );
  const view = async (rgb: Uint8Array, size: Size) =>
    (await clipPixels({ rgb, ...size }, resizedSize(size.width, size.height, params.resize), params, signal)).pixels;
  const base = baseViewSize(params, tileSize);
  const views = [await view(await whole(base), base)];
  const resized = await whole(plan.resized);
  const tile = new Uint8Array(tileSize * tileSize * 3);
  for (let row = 0; row < plan.tileRows; row++) {
    for (let col = 0; col < plan.tileCols; col++) {
      // The tile's pixels of the padded canvas: the resized image where it lies, black elsewhere.
      tile.fill(0);
      for (let y = 0; y < tileSize; y++) {
        const sy = row * tileSize + y - plan.top;
        if (sy < 0 || sy >= plan.resized.height) continue;
        for (let x = 0; x < tileSize; x++) {
          const sx = col * tileSize + x - plan.left;
          if (sx < 0 || sx >= plan.resized.width) continue;
          const from = (sy * plan.resized.width + sx) * 3;
          tile.set(resized.subarray(from, from + 3), (y * tileSize + x) * 3);
        }
      }
      views.push(await view(tile, { width: tileSize, height: tileSize }));
    }
  }
  return views;
}

/**
 * LLaVA-1.5's one view, in the image's pixels: the part the shortest-edge resize and center crop keep, or
 * with padding the whole square around the image (reaching past its edges by the padding).
 */
export function cropLayout(image: Size, params: ClipParams, grid: number, withCls: boolean): VisualLayout {
  if (params.padColour) {
    const side = Math.max(image.width, image.height);
    // The image sits at (left, top) in the square (expand2square's paste): the square starts that far before it.
    const [left, top] = [Math.floor((side - image.width) / 2), Math.floor((side - image.height) / 2)];
    const rect = { x: 0 - left, y: 0 - top, width: side, height: side };
    return singleViewLayout(rect, { rows: grid, cols: grid }, withCls);
  }
  const resized = resizedSize(image.width, image.height, params.resize);
  const crop = params.crop ?? resized;
  const sx = image.width / resized.width;
  const sy = image.height / resized.height;
  const rect = {
    x: Math.floor((resized.width - crop.width) / 2) * sx,
    y: Math.floor((resized.height - crop.height) / 2) * sy,
    width: crop.width * sx,
    height: crop.height * sy,
  };
  return singleViewLayout(rect, { rows: grid, cols: grid }, withCls);
}

/**
 * The visual token sequence from the views' projected features ([grid * grid, D] each, base first) and the
 * newline vector [D], in `layout`'s order.
 */
export function packVisualTokens(layout: VisualLayout, views: readonly Float32Array[], newline: Float32Array, dim: number): Float32Array {
  const { kind, tile, row, col } = layout.tokens;
  const out = new Float32Array(kind.length * dim);
  for (let t = 0; t < kind.length; t++) {
    if (kind[t] === 'newline') {
      out.set(newline, t * dim);
      continue;
    }
    const cols = layout.tiles[tile[t]].grid.cols;
    const cell = row[t] * cols + col[t];
    out.set(views[tile[t]].subarray(cell * dim, (cell + 1) * dim), t * dim);
  }
  return out;
}

/** What the vision tower takes: the view size, its patch grid, and AnyRes's resolutions for LLaVA-NeXT. */
export interface ViewSpec {
  tileSize: number;
  grid: number;
  /** CLIP's class token stays in the features ('full' strategy; LLaVA-1.5 only). */
  withCls: boolean;
  gridPinpoints?: readonly (readonly [number, number])[];
}

export interface PreparedImage {
  /** [3, viewSize, viewSize] normalized CHW pixels per view: the one view, or NeXT's base view then its tiles. */
  views: Float32Array[];
  viewSize: number;
  /** Where each visual token will come from. */
  layout: VisualLayout;
  /** Size as the user sees it (EXIF orientation applied). */
  originalWidth: number;
  originalHeight: number;
  format: ImageFormat;
  /** sha256 of the file bytes: the key for caching vision outputs and for traces. */
  hash: string;
}

/** Validates, decodes and cuts one image into the views the vision tower encodes. Throws ImageError on bad input; `signal` stops it between rows. */
export async function prepareImage(
  buffer: Uint8Array,
  params: ClipParams,
  spec: ViewSpec,
  limits: Partial<ImageLimits> = DEFAULT_IMAGE_LIMITS,
  signal?: AbortSignal,
): Promise<PreparedImage> {
  const info = await validateImage(buffer, limits);
  signal?.throwIfAborted();
  const image = { width: info.width, height: info.height };
  const plan = spec.gridPinpoints ? planAnyres(image, spec.gridPinpoints, spec.tileSize) : null;
  // The largest resize the views need: what a very large image may first be reduced towards.
  const { target, decodeTarget } = plan ? { target: plan.resized, decodeTarget: plan.resized } : framing(image, params);
  const decoded = await decodeRgb(buffer, info, decodeTarget, limits.maxPixels ?? DEFAULT_IMAGE_LIMITS.maxPixels);
  signal?.throwIfAborted();
  const common = {
    viewSize: spec.tileSize,
    originalWidth: image.width,
    originalHeight: image.height,
    format: info.format,
    hash: imageHash(buffer),
  };
  if (!plan) {
    const view = await clipPixels(frame(decoded, params), target, params, signal);
    return { ...common, views: [view.pixels], layout: cropLayout(image, params, spec.grid, spec.withCls) };
  }
  return {
    ...common,
    views: await anyresViews(decoded, plan, spec.tileSize, params, signal),
    layout: anyresLayout(image, plan, spec.tileSize, spec.grid),
  };
}
