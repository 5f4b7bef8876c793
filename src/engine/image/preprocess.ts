import { createHash } from 'node:crypto';
import sharp, { type OutputInfo } from 'sharp';
import { resizeBicubicRegion, type Region } from './resample.js';
import { DEFAULT_IMAGE_LIMITS, ImageError, validateImage, type ImageFormat, type ImageLimits } from './validate.js';

/**
 * CLIPImageProcessor semantics (transformers' slow, PIL-based processor):
 *   1. decode with sharp, apply EXIF orientation, drop alpha (PIL's convert('RGB') discards it,
 *      no compositing), to 8-bit sRGB;
 *   2. resize so the shortest edge is `shortest_edge` (long edge = int(size * long / short)) with
 *      Pillow's bicubic, reimplemented in resample.ts (sharp's cubic sits half a pixel off PIL's grid
 *      when enlarging);
 *   3. center crop to crop_size (offsets floor((in - out) / 2), zero padding if the crop is larger);
 *   4. rescale (1/255) and normalize per channel ((x - mean) / std); CHW float32.
 * Decoders can still differ from PIL's in the last bit for JPEG (IDCT, chroma upsampling).
 */

export interface ClipParams {
  /** Resize target: shortest edge, or an exact size; null = no resize. */
  resize: { shortestEdge: number } | { height: number; width: number } | null;
  /** Center crop; null = no crop. */
  crop: { height: number; width: number } | null;
  /** Multiplier applied to 0..255 values (1 = no rescale). */
  rescaleFactor: number;
  /** Per-channel normalization; null = none. */
  mean: [number, number, number] | null;
  std: [number, number, number] | null;
  /**
   * LLaVA's expand2square before everything else: the image centred on a square of its long side, filled
   * with this colour (0..255 RGB: the processor's image mean times 255, truncated, as the official code
   * computes it); null = no padding (llava-hf's processor).
   */
  padColour: [number, number, number] | null;
}

export const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

type Json = Record<string, unknown>;

function sizeOf(value: unknown, what: string): { height: number; width: number } | { shortestEdge: number } {
  if (typeof value === 'number') return { height: value, width: value };
  const v = (value ?? {}) as Json;
  if (typeof v.shortest_edge === 'number') return { shortestEdge: v.shortest_edge };
  if (typeof v.height === 'number' && typeof v.width === 'number') return { height: v.height, width: v.width };
  throw new Error(`preprocessor_config.json: ${what} must be a number, {shortest_edge} or {height, width}`);
}

function positiveNumber(value: unknown, fallback: number, what: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number' && value > 0) return value;
  throw new Error(`preprocessor_config.json: ${what} must be a positive number`);
}

function triple(value: unknown, fallback: [number, number, number]): [number, number, number] {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return [value, value, value];
  if (Array.isArray(value) && value.length === 3 && value.every((x) => typeof x === 'number')) return value as [number, number, number];
  throw new Error('preprocessor_config.json: image_mean / image_std must be three numbers');
}

/** Reads a CLIPImageProcessor preprocessor_config.json (defaults as in transformers). */
export function parseClipParams(json: Json): ClipParams {
  const crop = json.do_center_crop === false ? null : sizeOf(json.crop_size ?? 224, 'crop_size');
  if (crop && 'shortestEdge' in crop) throw new Error('preprocessor_config.json: crop_size needs height and width');
  return {
    resize: json.do_resize === false ? null : sizeOf(json.size ?? { shortest_edge: 224 }, 'size'),
    crop,
    rescaleFactor: json.do_rescale === false ? 1 : positiveNumber(json.rescale_factor, 1 / 255, 'rescale_factor'),
    mean: json.do_normalize === false ? null : triple(json.image_mean, OPENAI_CLIP_MEAN),
    std: json.do_normalize === false ? null : triple(json.image_std, OPENAI_CLIP_STD),
    padColour: json.image_aspect_ratio === 'pad' ? meanColour(triple(json.image_mean, OPENAI_CLIP_MEAN)) : null,
  };
}

/** `tuple(int(x * 255) for x in image_processor.image_mean)` of the official LLaVA code. */
function meanColour(mean: [number, number, number]): [number, number, number] {
  return mean.map((m) => Math.trunc(m * 255)) as [number, number, number];
}

/**
 * LLaVA's expand2square on decoded RGB: a square of the long side filled with `colour`, the image pasted at
 * ((side - w) // 2, (side - h) // 2), as PIL's paste in the official code places it.
 */
export function expandToSquare(
  decoded: { rgb: Uint8Array; width: number; height: number },
  colour: [number, number, number],
): { rgb: Uint8Array; width: number; height: number } {
  const { rgb, width, height } = decoded;
  if (width === height) return decoded;
  const side = Math.max(width, height);
  const out = new Uint8Array(side * side * 3);
  for (let i = 0; i < side * side; i++) out.set(colour, i * 3);
  const left = Math.floor((side - width) / 2);
  const top = Math.floor((side - height) / 2);
  for (let y = 0; y < height; y++) out.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), ((top + y) * side + left) * 3);
  return { rgb: out, width: side, height: side };
}

/** Output size of the resize step: transformers' get_resize_output_image_size(default_to_square=False). */
export function resizedSize(width: number, height: number, resize: ClipParams['resize']): { width: number; height: number } {
  if (!resize) return { width, height };
  if (!('shortestEdge' in resize)) return resize;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.floor((resize.shortestEdge * long) / short);
  return width <= height ? { width: resize.shortestEdge, height: newLong } : { width: newLong, height: resize.shortestEdge };
}

/**
 * Center crop + rescale + normalize of an interleaved RGB image (HWC uint8) into CHW float32.
 * Pixels outside the source (crop larger than the image) are 0 before rescaling, as HF pads.
 */
export function cropAndNormalize(
  rgb: Uint8Array,
  width: number,
  height: number,
  params: ClipParams,
): { pixels: Float32Array; width: number; height: number } {
  const outH = params.crop?.height ?? height;
  const outW = params.crop?.width ?? width;
  const crop = { top: Math.floor((height - outH) / 2), left: Math.floor((width - outW) / 2), height: outH, width: outW };
  return { pixels: normalizeCrop(rgb, { left: 0, top: 0, width, height }, crop, params), width: outW, height: outH };
}

/**
 * The crop (in resized-image coordinates) rescaled and normalized into CHW float32, from `rgb`,
 * which holds only `region` of the resized image (the part of the crop inside it).
 */
function normalizeCrop(
  rgb: Uint8Array,
  region: Region,
  crop: { top: number; left: number; height: number; width: number },
  params: ClipParams,
): Float32Array {
  const { height: outH, width: outW } = crop;
  const pixels = new Float32Array(3 * outH * outW);
  for (let c = 0; c < 3; c++) {
    const mean = params.mean?.[c] ?? 0;
    const std = params.std?.[c] ?? 1;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const ry = crop.top + y - region.top;
        const rx = crop.left + x - region.left;
        const inside = ry >= 0 && ry < region.height && rx >= 0 && rx < region.width;
        const value = inside ? rgb[(ry * region.width + rx) * 3 + c] : 0;
        pixels[(c * outH + y) * outW + x] = (value * params.rescaleFactor - mean) / std;
      }
    }
  }
  return pixels;
}

export interface PreprocessedImage {
  /** [3, height, width] normalized, channel-major: the vision graph's pixel_values for B = 1. */
  pixelValues: Float32Array;
  /** Model input size (after crop). */
  width: number;
  height: number;
  /** Size as the user sees it (EXIF orientation applied), before resizing. */
  originalWidth: number;
  originalHeight: number;
  format: ImageFormat;
  /** sha256 of the file bytes, hex: the key for caching vision outputs and for traces. */
  hash: string;
}

export function imageHash(buffer: Uint8Array): string {
  return createHash('sha256').update(buffer).digest('hex');
}

/**
 * Inputs with more pixels than this are first reduced by sharp (shrink-on-load, then its antialiased
 * cubic) to PRESCALE_FACTOR times the resize target, and only then resized exactly: decoding a 64 MP
 * photo whole would take ~200 MB and the exact pass seconds. Below it (every 12 MP phone photo) the
 * whole image is decoded and resized exactly as PIL does.
 */
export const PRESCALE_ABOVE_PIXELS = 16_000_000;
const PRESCALE_FACTOR = 4;

/**
 * The resize target of one view, and what to decode towards (a very large image is first reduced towards
 * it): the image's own size, or with padding the square it becomes, whose target the image itself takes
 * only its own share of.
 */
export function framing(image: { width: number; height: number }, params: ClipParams) {
  const side = Math.max(image.width, image.height);
  const framed = params.padColour ? { width: side, height: side } : image;
  const target = resizedSize(framed.width, framed.height, params.resize);
  const decodeTarget = { width: (target.width * image.width) / framed.width, height: (target.height * image.height) / framed.height };
  return { target, decodeTarget };
}

/** The decoded image as the processor takes it: padded to a square when the pack pads. */
export function frame(
  decoded: { rgb: Uint8Array; width: number; height: number },
  params: ClipParams,
): { rgb: Uint8Array; width: number; height: number } {
  return params.padColour ? expandToSquare(decoded, params.padColour) : decoded;
}

/** Validates, decodes and preprocesses one image for the CLIP vision tower. Throws ImageError on bad input; `signal` stops it between rows. */
export async function preprocessClip(
  buffer: Uint8Array,
  params: ClipParams,
  limits: Partial<ImageLimits> = DEFAULT_IMAGE_LIMITS,
  signal?: AbortSignal,
): Promise<PreprocessedImage> {
  const info = await validateImage(buffer, limits);
  signal?.throwIfAborted();
  const { target, decodeTarget } = framing(info, params);
  const decoded = await decodeRgb(buffer, info, decodeTarget, limits.maxPixels ?? DEFAULT_IMAGE_LIMITS.maxPixels);
  signal?.throwIfAborted();
  const view = await clipPixels(frame(decoded, params), target, params, signal);
  return {
    pixelValues: view.pixels,
    width: view.width,
    height: view.height,
    originalWidth: info.width,
    originalHeight: info.height,
    format: info.format,
    hash: imageHash(buffer),
  };
}

/**
 * Steps 2-4 on a decoded image: the resize to `target` (only the pixels the center crop keeps are
 * computed), the crop, rescale and normalize into CHW float32. `signal` stops it between rows.
 */
export async function clipPixels(
  decoded: { rgb: Uint8Array; width: number; height: number },
  target: { width: number; height: number },
  params: ClipParams,
  signal?: AbortSignal,
): Promise<{ pixels: Float32Array; width: number; height: number }> {
  const crop = params.crop ?? target;
  const top = Math.floor((target.height - crop.height) / 2);
  const left = Math.floor((target.width - crop.width) / 2);
  const x0 = Math.max(0, left);
  const y0 = Math.max(0, top);
  const region = {
    left: x0,
    top: y0,
    width: Math.min(target.width, left + crop.width) - x0,
    height: Math.min(target.height, top + crop.height) - y0,
  };
  const rgb = await runSteps(
    resizeBicubicRegion(decoded.rgb, decoded.width, decoded.height, 3, target.width, target.height, region),
    signal,
  );
  return { pixels: normalizeCrop(rgb, region, { top, left, ...crop }, params), width: crop.width, height: crop.height };
}

/** Runs a resampling generator, giving the event loop a turn between its steps (a cancel message may be waiting). */
export async function runSteps<T>(steps: Generator<void, T>, signal?: AbortSignal): Promise<T> {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
  }
}

/** Decoded 8-bit sRGB without alpha, orientation applied; reduced first when the image is very large (see PRESCALE_ABOVE_PIXELS). */
export async function decodeRgb(
  buffer: Uint8Array,
  info: { format: ImageFormat; width: number; height: number },
  target: { width: number; height: number },
  maxPixels: number,
): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const prescale =
    info.width * info.height > PRESCALE_ABOVE_PIXELS && Math.min(info.width / target.width, info.height / target.height) > PRESCALE_FACTOR;
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    let pipeline = sharp(buffer, { limitInputPixels: maxPixels }).autoOrient();
    if (prescale) {
      pipeline = pipeline.resize(Math.round(target.width * PRESCALE_FACTOR), Math.round(target.height * PRESCALE_FACTOR), {
        fit: 'fill',
        kernel: 'cubic',
      });
    }
    decoded = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageError(
      'corrupt',
      `The ${info.format.toUpperCase()} image could not be decoded; it may be damaged or truncated (${(e as Error).message}).`,
    );
  }
  const { width, height, channels } = decoded.info;
  if (channels !== 3) throw new ImageError('corrupt', `Decoding gave ${channels} channels instead of RGB.`);
  return { rgb: new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length), width, height };
}
