import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { bicubicWeight, resizeBicubic } from '../../src/engine/image/resample.js';

/** One row of grey pixels as RGB. */
const rowRgb = (values: number[]) => Uint8Array.from(values.flatMap((v) => [v, v, v]));
const red = (rgb: Uint8Array) => Array.from(rgb.filter((_, i) => i % 3 === 0));

describe("Pillow's bicubic resize", () => {
  it('uses Keys cubic with a = -0.5', () => {
    expect(bicubicWeight(0)).toBe(1);
    expect(bicubicWeight(1) === 0 && bicubicWeight(2) === 0).toBe(true);
    expect(bicubicWeight(0.25)).toBe(0.8671875);
    expect(bicubicWeight(-0.75)).toBe(0.2265625);
    expect(bicubicWeight(1.25)).toBe(-0.0703125);
    expect(bicubicWeight(1.75)).toBe(-0.0234375);
  });

  it('enlarges on the pixel-centre grid: a step 0|200 doubled, worked out by hand', () => {
    // 8 -> 16: output i samples at (i + 0.5) / 2, taps at input j with weight cubic(j + 0.5 - center).
    // i = 7: center 3.75, taps j = 2..5 at -1.25, -0.25, 0.75, 1.75 -> 200 * (0.2265625 - 0.0234375) = 40.625 -> 41
    // i = 8: center 4.25 -> 200 * (0.8671875 - 0.0703125) = 159.375 -> 159
    // i = 9: center 4.75 -> 200 * (0.8671875 + 0.2265625 - 0.0234375) = 214.0625 -> 214
    // i = 10: center 5.25, taps j = 3..6 -> 200 * (0.2265625 + 0.8671875 - 0.0703125) = 204.6875 -> 205 (overshoot)
    // i = 6: center 3.25 -> 200 * -0.0703125 < 0 -> clamped to 0
    const out = red(resizeBicubic(rowRgb([0, 0, 0, 0, 200, 200, 200, 200]), 8, 1, 3, 16, 1));
    expect(out.slice(5, 11)).toEqual([0, 0, 41, 159, 214, 205]);
    expect(out.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
  });

  it('shrinks with the kernel widened by the scale (antialiasing), worked out by hand', () => {
    // 8 -> 4, scale 2: output 1 has center 3, support 4, taps j = 0..6 with weight cubic((j + 0.5 - 3) / 2):
    // -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375 (sum 2.0234375).
    // Step 0|200 at j = 4: 200 * (0.2265625 - 0.0703125 - 0.0234375) / 2.0234375 = 13.13 -> 13.
    const out = red(resizeBicubic(rowRgb([0, 0, 0, 0, 200, 200, 200, 200]), 8, 1, 3, 4, 1));
    expect(out[1]).toBe(13);
    expect(out[2]).toBe(200 - 13); // mirror image of output 1
  });

  it('keeps constants constant, mirrors exactly, and leaves same-size axes untouched', () => {
    for (const [w, h, W, H] of [
      [10, 7, 23, 5],
      [37, 29, 8, 8],
      [5, 5, 5, 12],
    ]) {
      const flat = new Uint8Array(w * h * 3).fill(173);
      expect(resizeBicubic(flat, w, h, 3, W, H).every((v) => v === 173)).toBe(true);
    }
    const w = 13;
    const values = Array.from({ length: w }, (_, i) => (i * 97) % 256);
    const forward = red(resizeBicubic(rowRgb(values), w, 1, 3, 29, 1));
    const mirrored = red(resizeBicubic(rowRgb([...values].reverse()), w, 1, 3, 29, 1));
    expect(mirrored).toEqual([...forward].reverse());
    const same = rowRgb(values);
    expect(resizeBicubic(same, w, 1, 3, w, 1)).toBe(same);
  });

  it('agrees with sharp/libvips (an independent antialiased cubic) when shrinking', async () => {
    const [w, h, W, H] = [300, 200, 84, 56];
    const src = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3;
        src[i] = 128 + 100 * Math.sin(x / 17);
        src[i + 1] = 128 + 90 * Math.cos(y / 11);
        src[i + 2] = ((x >> 4) + (y >> 4)) % 2 ? 220 : 30;
      }
    }
    const ours = resizeBicubic(src, w, h, 3, W, H);
    const theirs = await sharp(Buffer.from(src), { raw: { width: w, height: h, channels: 3 } })
      .resize({ width: W, height: H, fit: 'fill', kernel: 'cubic' })
      .raw()
      .toBuffer();
    let max = 0;
    let sum = 0;
    for (let i = 0; i < ours.length; i++) {
      const d = Math.abs(ours[i] - theirs[i]);
      max = Math.max(max, d);
      sum += d;
    }
    expect(sum / ours.length).toBeLessThan(1);
    expect(max).toBeLessThanOrEqual(12);
  });
});
