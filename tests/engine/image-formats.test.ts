import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { validateImage } from '../../src/engine/image/validate.js';
import { IMAGE_ACCEPT, IMAGE_FORMATS } from '../../src/shared/images.js';

/** A small picture in `format`, encoded by sharp itself (HEIF with AV1 inside: the HEIF this build decodes). */
function encoded(format: (typeof IMAGE_FORMATS)[number]['format']): Promise<Buffer> {
  const picture = sharp({ create: { width: 24, height: 16, channels: 3, background: '#c63' } });
  if (format === 'heif') return picture.heif({ compression: 'av1' }).toBuffer();
  return picture.toFormat(format).toBuffer();
}

describe('the one list of image formats', () => {
  it('holds exactly what sharp decodes: each one is read back, sized and named by the intake check', async () => {
    for (const { format } of IMAGE_FORMATS) {
      const bytes = await encoded(format);
      const info = await validateImage(bytes);
      // sharp names HEIF and AVIF the same container; the intake check tells them apart by brand.
      expect(format === 'heif' ? ['heif', 'avif'] : [format], format).toContain(info.format);
      expect([info.width, info.height], format).toEqual([24, 16]);
      const { data } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
      expect(data.length, format).toBeGreaterThan(0);
    }
    const decodable = Object.entries(sharp.format)
      .filter(([name, f]) => f.input.buffer && !['svg', 'raw', 'magick'].includes(name))
      .map(([name]) => name);
    // sharp lists AVIF under heif; svg (a document) and raw (pixels without a header) are not photos.
    expect(new Set(decodable)).toEqual(new Set(IMAGE_FORMATS.map((f) => (f.format === 'avif' ? 'heif' : f.format))));
  });

  it('is what the picker offers and what a refusal names', async () => {
    for (const { mimeTypes, suffixes } of IMAGE_FORMATS)
      for (const type of [...mimeTypes, ...suffixes]) expect(IMAGE_ACCEPT.split(',')).toContain(type);
    const refusal = await validateImage(Buffer.from('%PDF-1.7 not a picture')).catch((e: Error) => e.message);
    expect(refusal).toBe('This file is not an image the app reads (it takes PNG, JPEG, WebP, GIF, TIFF, AVIF or HEIF (AV1)).');
  });
});
