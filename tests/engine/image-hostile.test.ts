import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { cropAndNormalize, parseClipParams, preprocessClip, resizedSize } from '../../src/engine/image/preprocess.js';
import { resizeBicubic } from '../../src/engine/image/resample.js';

/**
 * Images built to hurt the engine: a 345-byte 20000x4 PNG whose resize target is 1.7 GB, a 65500x1
 * JPEG, very large photos. Each is refused or reduced with bounded memory, stays cancellable, and the
 * windowed resize gives exactly the pixels of the whole resize cut to the crop.
 */

const params = parseClipParams({ size: { shortest_edge: 336 }, crop_size: 336 });

function gradient(width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 31 + Math.floor(i / (width * 3)) * 17) & 255;
  return rgb;
}
const png = (rgb: Buffer, width: number, height: number) =>
  sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();

describe('hostile images', () => {
  it('refuses a 20000x4 PNG at once, naming the shape and what to do, without growing memory', async () => {
    const bytes = await sharp({ create: { width: 20000, height: 4, channels: 3, background: '#888' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(bytes.length).toBeLessThan(1024);
    const rssBefore = process.memoryUsage().rss;
    const start = performance.now();
    await expect(preprocessClip(bytes, params)).rejects.toMatchObject({
      code: 'invalid-request',
      problem: 'too-large',
      message: expect.stringMatching(/20000×4, 5000 times wider than tall; the limit is 32:1.*Crop it/),
    });
    expect(performance.now() - start).toBeLessThan(2_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100e6);
  });

  it('refuses a 65500x1 JPEG with an image error, not a RangeError', async () => {
    const bytes = await sharp({ create: { width: 65500, height: 1, channels: 3, background: '#888' } })
      .jpeg()
      .toBuffer();
    await expect(preprocessClip(bytes, params)).rejects.toMatchObject({ problem: 'too-large', message: expect.stringMatching(/65500×1/) });
  });

  it('computes only the crop of a wide image, pixel for pixel what the whole resize gives', async () => {
    const [width, height] = [1000, 40]; // 25:1, accepted; the whole resize would be 8400x336
    const rgb = gradient(width, height);
    const ours = await preprocessClip(await png(rgb, width, height), params);
    const target = resizedSize(width, height, params.resize);
    const whole = cropAndNormalize(resizeBicubic(rgb, width, height, 3, target.width, target.height), target.width, target.height, params);
    expect(ours.width).toBe(336);
    expect(Buffer.from(ours.pixelValues.buffer).equals(Buffer.from(whole.pixels.buffer))).toBe(true);
  });

  it('gives the same pixels as the whole resize for a crop larger than the image (zero padding)', async () => {
    const padded = { ...params, resize: { height: 200, width: 300 }, crop: { height: 336, width: 336 } };
    const rgb = gradient(90, 60);
    const ours = await preprocessClip(await png(rgb, 90, 60), padded);
    const whole = cropAndNormalize(resizeBicubic(rgb, 90, 60, 3, 300, 200), 300, 200, padded);
    expect(Buffer.from(ours.pixelValues.buffer).equals(Buffer.from(whole.pixels.buffer))).toBe(true);
  });

  it('stops when cancelled, keeping the event loop free while it works', async () => {
    const [width, height] = [1800, 1200];
    const bytes = await png(gradient(width, height), width, height);
    const controller = new AbortController();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const started = performance.now();
    const work = preprocessClip(bytes, params, undefined, controller.signal);
    setTimeout(() => controller.abort(), 30);
    await expect(work).rejects.toMatchObject({ name: 'AbortError' });
    clearInterval(ticker);
    const uncancelled = performance.now();
    await preprocessClip(bytes, params);
    const fullMs = performance.now() - uncancelled;
    expect(ticks).toBeGreaterThan(0);
    // Cancelled work ends well before the whole preprocessing would have.
    expect(uncancelled - started).toBeLessThan(fullMs);
  });
});
