/**
 * Bicubic resize with Pillow's semantics, because Hugging Face's CLIPImageProcessor resizes with
 * PIL (`resample=3`) and the model was trained on what PIL produces. sharp/libvips is close when
 * shrinking (mean |diff| < 0.5/255) but samples enlargements half a pixel off PIL's grid (up to
 * ~80/255 at hard edges), so the resize is done here and sharp only decodes.
 *
 * Pillow's algorithm (libImaging/Resample.c), reproduced step by step:
 *   - separable: one pass per axis into a uint8 intermediate; an axis whose size does not change is not
 *     touched. Pillow 13 runs the vertical pass first when both axes shrink and 2·outW − outH > 2·inW − inH,
 *     or when the width grows while the height shrinks; otherwise the horizontal pass first (older Pillow:
 *     always horizontal first). The order was read off Pillow 13.0's output (it decides the rounding of the
 *     uint8 intermediate), checked on 1,500 random size pairs, small and large (`verticalFirst`);
 *   - output pixel i samples around center (i + 0.5) * scale, scale = in / out; when shrinking the
 *     kernel is widened by the scale (antialiasing): support = 2 * max(scale, 1);
 *   - Keys' cubic with a = -0.5, weights normalized to sum 1, then turned into 22-bit fixed point
 *     (rounded half away from zero); each sum starts at half a unit and is floored and clamped to 0..255.
 * The tests check the formula by hand, and the LLaVA fixtures (tests/fixtures/reference*) against transformers' PIL pixels.
 */

const PRECISION_BITS = 22; // Pillow: 32 - 8 - 2, so that 255 * (sum of |weights|) * 2^bits fits an int32
const ONE = 2 ** PRECISION_BITS;

/** Keys' cubic convolution kernel with a = -0.5 (Pillow's bicubic_filter), support 2. */
export function bicubicWeight(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

interface AxisKernel {
  /** First input index read by each output index of the window. */
  start: Int32Array;
  /** Fixed-point weights, `taps` per output index (zero-padded). */
  weights: Int32Array;
  taps: number;
}

/** A rectangle of the resized image: only these output pixels are computed (the center crop needs no more). */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis, for the output indices
 * `first .. first + count - 1` only: each output pixel depends on its own neighbourhood alone, so a
 * window of the output is exactly the same pixels as the whole output cut to that window.
 */
function axisKernel(inSize: number, outSize: number, first = 0, count = outSize): AxisKernel {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(count);
  const weights = new Int32Array(count * taps);
  const w = new Float64Array(taps);
  const inverseScale = 1 / filterScale; // multiplied, not divided, as Pillow does, so weights round alike
  for (let j = 0; j < count; j++) {
    const center = (first + j + 0.5) * scale;
    const from = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - from;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      w[k] = bicubicWeight((k + from - center + 0.5) * inverseScale);
      sum += w[k];
    }
    for (let k = 0; k < n; k++) {
      const normalized = sum !== 0 ? w[k] / sum : w[k];
      weights[j * taps + k] = Math.trunc(normalized < 0 ? -0.5 + normalized * ONE : 0.5 + normalized * ONE);
    }
    start[j] = from;
  }
  return { start, weights, taps };
}

function clip8(sum: number): number {
  if (sum <= 0) return 0;
  if (sum >= 256 * ONE) return 255;
  return Math.floor(sum / ONE);
}

/** Output rows between two yields of the resampling generators: a few milliseconds of work. */
const ROWS_PER_STEP = 16;

/**
 * One pass along x (horizontal) or y over an interleaved image with `channels` channels, computing
 * output indices `first .. first + count - 1` along the axis. Yields every few rows so a caller can
 * stay responsive and cancel; returns the resampled image.
 */
function* resampleAxis(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outSize: number,
  horizontal: boolean,
  first: number,
  count: number,
): Generator<void, Uint8Array> {
  const kernel = axisKernel(horizontal ? width : height, outSize, first, count);
  const outW = horizontal ? count : width;
  const outH = horizontal ? height : count;
  const out = new Uint8Array(outW * outH * channels);
  // Distance in the buffer between neighbouring input samples along the axis.
  const step = horizontal ? channels : width * channels;
  for (let y = 0; y < outH; y++) {
    if (y % ROWS_PER_STEP === ROWS_PER_STEP - 1) yield;
    for (let x = 0; x < outW; x++) {
      const i = horizontal ? x : y;
      const base = horizontal ? (y * width + kernel.start[i]) * channels : (kernel.start[i] * width + x) * channels;
      const wBase = i * kernel.taps;
      for (let c = 0; c < channels; c++) {
        let sum = ONE / 2;
        for (let k = 0, p = base + c; k < kernel.taps; k++, p += step) {
          const weight = kernel.weights[wBase + k];
          if (weight !== 0) sum += src[p] * weight;
        }
        out[(y * outW + x) * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

/** Columns `left .. left + count - 1` of an interleaved image, copied out (an axis that does not change is not resampled). */
function columns(src: Uint8Array, width: number, height: number, channels: number, left: number, count: number): Uint8Array {
  if (left === 0 && count === width) return src;
  const out = new Uint8Array(count * height * channels);
  for (let y = 0; y < height; y++)
    out.set(src.subarray((y * width + left) * channels, (y * width + left + count) * channels), y * count * channels);
  return out;
}

/**
 * The `region` of the image PIL's Image.resize(..., BICUBIC) would give at outWidth x outHeight, as an
 * interleaved uint8 image of region.width x region.height. Memory and time scale with the region, not
 * with the full output, so a resize target far larger than the crop costs nothing extra.
 */
export function* resizeBicubicRegion(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  region: Region,
): Generator<void, Uint8Array> {
  if (verticalFirst(width, height, outWidth, outHeight)) {
    const rows = yield* resampleAxis(src, width, height, channels, outHeight, false, region.top, region.height);
    return yield* resampleAxis(rows, width, region.height, channels, outWidth, true, region.left, region.width);
  }
  const image =
    outWidth !== width
      ? yield* resampleAxis(src, width, height, channels, outWidth, true, region.left, region.width)
      : columns(src, width, height, channels, region.left, region.width);
  if (outHeight !== height) return yield* resampleAxis(image, region.width, height, channels, outHeight, false, region.top, region.height);
  if (region.top === 0 && region.height === height) return image;
  return image.slice(region.top * region.width * channels, (region.top + region.height) * region.width * channels);
}

/** Pillow 13's choice of pass order when both axes change (see the top of this file). */
function verticalFirst(width: number, height: number, outWidth: number, outHeight: number): boolean {
  if (outWidth === width || outHeight === height || (outWidth > width && outHeight > height)) return false;
  return 2 * outWidth - outHeight > 2 * width - height;
}

/** Runs a resampling generator to its end. */
export function runToEnd<T>(steps: Generator<void, T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** Resizes an interleaved uint8 image (HWC) to outWidth x outHeight as PIL's Image.resize(..., BICUBIC); returns `src` itself when the size is unchanged. */
export function resizeBicubic(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  return runToEnd(
    resizeBicubicRegion(src, width, height, channels, outWidth, outHeight, { left: 0, top: 0, width: outWidth, height: outHeight }),
  );
}
