import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IMAGE_LIMITS, ImageStore } from '../../src/main/storage/index.js';

let dir: string;
let store: ImageStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tp-img-'));
  store = new ImageStore(join(dir, 'images'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const solid = (width: number, height: number, format: 'png' | 'jpeg' | 'webp') =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .toFormat(format)
    .toBuffer();

/** A PNG whose header claims `width`×`height` (built by hand from the PNG spec, so no decoder is involved). */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // A token IDAT: readers want one to exist, but nothing here decodes it.
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1))), chunk('IEND', Buffer.alloc(0))]);
}

describe('image store', () => {
  it('stores by sha256 with a thumbnail, and dedupes the same bytes', async () => {
    const png = await solid(640, 480, 'png');
    const a = await store.addBytes(png);
    const b = await store.addBytes(png);
    expect(a).toEqual(b);
    expect(a).toMatchObject({ format: 'png', width: 640, height: 480, bytes: png.length });
    expect(a.id).toBe((await import('node:crypto')).createHash('sha256').update(png).digest('hex'));
    expect((await readdir(store.dir)).filter((n) => n.endsWith('.png'))).toEqual([`${a.id}.png`]);
    const thumb = await sharp(await store.thumbnail(a.id)).metadata();
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['webp', 256, 192]);
    expect(await store.path(a.id)).toBe(join(store.dir, `${a.id}.png`));
  });

  it('accepts JPEG and WebP, judged by content, and stores them with their own extension', async () => {
    const jpeg = await store.addBytes(await solid(100, 50, 'jpeg'));
    expect(jpeg).toMatchObject({ format: 'jpeg', width: 100, height: 50 });
    expect(await store.path(jpeg.id)).toBe(join(store.dir, `${jpeg.id}.jpg`));
    expect(await store.addBytes(await solid(30, 40, 'webp'))).toMatchObject({ format: 'webp', width: 30, height: 40 });
  });

  it('rejects non-images, damaged and empty images with a code that survives IPC', async () => {
    const rejected = (problem: string, message?: RegExp) => ({ code: 'invalid-request', problem, ...(message && { message }) });
    await expect(store.addBytes(Buffer.from('%PDF-1.7'))).rejects.toMatchObject(rejected('not-an-image', /not an image/));
    await expect(store.addBytes(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).rejects.toMatchObject(
      rejected('unsupported-format'),
    );
    await expect(store.addBytes(Buffer.alloc(0))).rejects.toMatchObject(rejected('empty'));
    const png = await solid(300, 300, 'png');
    await expect(store.addBytes(png.subarray(0, 60))).rejects.toMatchObject(rejected('corrupt', /damaged/));
    // Header intact, pixel data cut short: only decoding finds it.
    await expect(store.addBytes(png.subarray(0, png.length - 30))).rejects.toMatchObject(rejected('corrupt', /damaged/));
    // Nothing rejected reached the store.
    expect(await readdir(store.dir).catch(() => [])).toEqual([]);
  });

  it('rejects images over the pixel limit before decoding them, and over the size limit', async () => {
    await expect(store.addBytes(pngHeaderOnly(10_000, 10_000))).rejects.toMatchObject({
      problem: 'too-large',
      message: /10000×10000.*limit is 50.0 MP/,
    });
    const big = Buffer.concat([pngHeaderOnly(10, 10), Buffer.alloc(IMAGE_LIMITS.maxBytes)]);
    await expect(store.addBytes(big)).rejects.toMatchObject({ problem: 'too-large', message: /limit is 25.0 MB/ });
  });

  it('refuses ids that are not sha256 hex', async () => {
    await expect(store.path('../../etc/passwd')).rejects.toMatchObject({ problem: 'invalid' });
    await expect(store.thumbnail('0'.repeat(64))).rejects.toMatchObject({ problem: 'not-found' });
  });
});
