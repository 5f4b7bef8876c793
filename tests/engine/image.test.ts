import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageError, sniffFormat, validateImage } from '../../src/engine/image/validate.js';
import {
  cropAndNormalize,
  parseClipParams,
  preprocessClip,
  resizedSize,
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  type ClipParams,
} from '../../src/engine/image/preprocess.js';

/** A deterministic RGB test pattern (HWC uint8) whose every value is known. */
function pattern(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 7 + y * 3) % 256;
      rgb[i + 1] = (x * 11 + y * 13 + 40) % 256;
      rgb[i + 2] = (255 - x * 5 - y) & 255;
    }
  }
  return rgb;
}

const encode = (rgb: Uint8Array, width: number, height: number, channels: 1 | 3 | 4 = 3) =>
  sharp(rgb, { raw: { width, height, channels } });

/** LLaVA-1.5-style processor config for a 28 px model. */
const params28 = parseClipParams({
  do_resize: true,
  size: { shortest_edge: 28 },
  resample: 3,
  do_center_crop: true,
  crop_size: { height: 28, width: 28 },
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: OPENAI_CLIP_MEAN,
  image_std: OPENAI_CLIP_STD,
});

/** Hand formula for one output value. */
const expected = (v: number, c: number) => (v / 255 - OPENAI_CLIP_MEAN[c]) / OPENAI_CLIP_STD[c];

describe('validateImage', () => {
  it('recognises formats by magic bytes and reads the size', async () => {
    const rgb = pattern(10, 6);
    for (const [format, buffer] of [
      ['png', await encode(rgb, 10, 6).png().toBuffer()],
      ['jpeg', await encode(rgb, 10, 6).jpeg().toBuffer()],
      ['webp', await encode(rgb, 10, 6).webp().toBuffer()],
      ['gif', await encode(rgb, 10, 6).gif().toBuffer()],
      ['tiff', await encode(rgb, 10, 6).tiff().toBuffer()],
    ] as const) {
      expect(sniffFormat(buffer)).toBe(format);
      expect(await validateImage(buffer)).toEqual({ format, width: 10, height: 6, bytes: buffer.length });
    }
  });

  it('rejects empty files, non-images and unsupported formats with a reason', async () => {
    const problem = (buf: Uint8Array) =>
      validateImage(buf).then(
        () => 'accepted',
        (e: ImageError) => `${e.problem}: ${e.message}`,
      );
    expect(await problem(new Uint8Array())).toMatch(/^empty/);
    expect(await problem(Buffer.from('%PDF-1.7 not a picture'))).toMatch(/^not-an-image: This file is not an image/);
    expect(await problem(Buffer.from('{"json": true}'))).toMatch(/^not-an-image/);
    expect(await problem(Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]))).toMatch(/^unsupported-format: BMP/);
    expect(await problem(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"></svg>'))).toMatch(/^unsupported-format: SVG/);
    expect(await problem(Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(40)]))).toMatch(
      /^unsupported-format: HEIC/,
    );
  });

  it('rejects a header-damaged file as corrupt and oversized files before decoding', async () => {
    const png = await encode(pattern(40, 40), 40, 40).png().toBuffer();
    const headerOnly = png.subarray(0, 12); // magic bytes survive, IHDR does not
    await expect(validateImage(headerOnly)).rejects.toMatchObject({ problem: 'corrupt', code: 'invalid-request' });
    await expect(validateImage(png, { maxBytes: 100, maxPixels: 1e9 })).rejects.toMatchObject({
      problem: 'too-large',
      message: expect.stringMatching(/limit is/),
    });
    await expect(validateImage(png, { maxBytes: 1e9, maxPixels: 1599 })).rejects.toMatchObject({
      problem: 'too-large',
      message: expect.stringMatching(/40×40/),
    });
    expect((await validateImage(png, { maxBytes: 1e9, maxPixels: 1600 })).width).toBe(40);
  });

  it('refuses a decompression bomb from its header alone', async () => {
    // A valid PNG signature + IHDR claiming 40000 x 40000 RGB, and one empty zlib stream for pixel data.
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(40000, 0);
    ihdr.writeUInt32BE(40000, 4);
    ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
    const chunk = (type: string, data: Buffer) => {
      const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(data.length);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(body));
      return Buffer.concat([length, body, crc]);
    };
    const bomb = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
      chunk('IEND', Buffer.alloc(0)),
    ]);
    expect(bomb.length).toBeLessThan(100);
    await expect(validateImage(bomb)).rejects.toMatchObject({
      problem: 'too-large',
      message: expect.stringMatching(/40000×40000 \(1600\.0 MP\)/),
    });
  });

  it('reports the displayed size of an EXIF-rotated JPEG', async () => {
    const jpeg = await encode(pattern(30, 20), 30, 20).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await validateImage(jpeg)).toMatchObject({ width: 20, height: 30 });
  });
});

describe('CLIP preprocessing', () => {
  it('parses preprocessor_config.json with transformers defaults and switches', () => {
    expect(params28).toEqual({
      resize: { shortestEdge: 28 },
      crop: { height: 28, width: 28 },
      rescaleFactor: 1 / 255,
      mean: OPENAI_CLIP_MEAN,
      std: OPENAI_CLIP_STD,
      padColour: null,
    });
    expect(parseClipParams({ size: 336, crop_size: 336, do_normalize: false, do_rescale: false })).toEqual({
      resize: { height: 336, width: 336 },
      crop: { height: 336, width: 336 },
      rescaleFactor: 1,
      mean: null,
      std: null,
      padColour: null,
    });
    expect(() => parseClipParams({ size: 'big' })).toThrow(/size must be/);
  });

  it('computes the shortest-edge resize as transformers does (long edge truncated)', () => {
    expect(resizedSize(640, 480, { shortestEdge: 336 })).toEqual({ width: 448, height: 336 });
    expect(resizedSize(480, 641, { shortestEdge: 336 })).toEqual({ width: 336, height: 448 }); // 448.7 -> 448
    expect(resizedSize(100, 100, { shortestEdge: 28 })).toEqual({ width: 28, height: 28 });
  });

  it('center-crops, rescales and normalizes into CHW exactly (hand-computed)', () => {
    // 4 x 3 image, crop 2 x 2: top = floor(1/2) = 0, left = floor(2/2) = 1.
    const rgb = pattern(4, 3);
    const p: ClipParams = { ...params28, crop: { height: 2, width: 2 } };
    const out = cropAndNormalize(rgb, 4, 3, p);
    expect([out.width, out.height]).toEqual([2, 2]);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 2; x++) {
          expect(out.pixels[(c * 2 + y) * 2 + x]).toBeCloseTo(expected(rgb[(y * 4 + x + 1) * 3 + c], c), 6);
        }
      }
    }
    // A crop larger than the image pads with 0 before normalization.
    const padded = cropAndNormalize(rgb, 4, 3, { ...p, crop: { height: 5, width: 4 } });
    expect(padded.pixels[0]).toBeCloseTo(expected(0, 0), 6); // row -1
    expect(padded.pixels[4]).toBeCloseTo(expected(rgb[0], 0), 6); // row 0
  });

  it('end to end with no resampling: a 28 x 42 portrait PNG is cropped to rows 7..34', async () => {
    const rgb = pattern(28, 42);
    const png = await encode(rgb, 28, 42).png().toBuffer();
    const out = await preprocessClip(png, params28);
    expect(out).toMatchObject({ width: 28, height: 28, originalWidth: 28, originalHeight: 42, format: 'png' });
    expect(out.hash).toBe(createHash('sha256').update(png).digest('hex'));
    expect(out.pixelValues).toHaveLength(3 * 28 * 28);
    let maxError = 0;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          maxError = Math.max(maxError, Math.abs(out.pixelValues[(c * 28 + y) * 28 + x] - expected(rgb[((y + 7) * 28 + x) * 3 + c], c)));
        }
      }
    }
    expect(maxError).toBeLessThan(1e-6);
  });

  it('drops alpha like PIL convert("RGB") and expands greyscale to three equal channels', async () => {
    const rgba = new Uint8Array(28 * 28 * 4).map((_, i) => (i % 4 === 3 ? 0 : (i * 5) % 256)); // fully transparent
    const fromRgba = await preprocessClip(await encode(rgba, 28, 28, 4).png().toBuffer(), params28);
    expect(fromRgba.pixelValues[0]).toBeCloseTo(expected(rgba[0], 0), 6);
    expect(fromRgba.pixelValues[28 * 28 + 5]).toBeCloseTo(expected(rgba[5 * 4 + 1], 1), 6);
    const grey = new Uint8Array(28 * 28).map((_, i) => i % 256);
    const fromGrey = await preprocessClip(await encode(grey, 28, 28, 1).png().toBuffer(), params28);
    for (const i of [0, 100, 783]) {
      for (let c = 0; c < 3; c++) expect(fromGrey.pixelValues[c * 784 + i]).toBeCloseTo(expected(grey[i], c), 6);
    }
  });

  it('resizes landscape images by the short edge and keeps the center (bicubic, approximate)', async () => {
    // 100 x 50: left half red, right half blue. Resized to 56 x 28, crop columns 14..41: the seam sits at column 14.
    const rgb = new Uint8Array(100 * 50 * 3);
    for (let i = 0; i < 100 * 50; i++) rgb.set(i % 100 < 50 ? [220, 20, 20] : [20, 20, 220], i * 3);
    const out = await preprocessClip(await encode(rgb, 100, 50).jpeg({ quality: 100 }).toBuffer(), params28);
    expect([out.width, out.height, out.originalWidth, out.originalHeight]).toEqual([28, 28, 100, 50]);
    const at = (c: number, y: number, x: number) => out.pixelValues[(c * 28 + y) * 28 + x];
    for (const y of [3, 14, 25]) {
      expect(Math.abs(at(0, y, 4) - expected(220, 0))).toBeLessThan(0.15); // red side, a few 1/255 steps of JPEG + resampling
      expect(Math.abs(at(2, y, 24) - expected(220, 2))).toBeLessThan(0.15); // blue side
      expect(at(0, y, 4)).toBeGreaterThan(at(0, y, 24));
    }
  });

  it('turns truncated and garbage-after-header files into corrupt-image errors', async () => {
    const jpeg = await encode(pattern(64, 64), 64, 64).jpeg().toBuffer();
    await expect(preprocessClip(jpeg.subarray(0, Math.floor(jpeg.length / 2)), params28)).rejects.toMatchObject({ problem: 'corrupt' });
    const png = await encode(pattern(64, 64), 64, 64).png().toBuffer();
    const mangled = Buffer.from(png);
    mangled.fill(0x55, 60, png.length - 20); // IDAT payload destroyed, header intact
    await expect(preprocessClip(mangled, params28)).rejects.toBeInstanceOf(ImageError);
  });
});
