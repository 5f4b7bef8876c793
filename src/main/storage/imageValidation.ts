import sharp from 'sharp';
import { StorageError } from './errors.js';

/** Limits for images people drop, paste or pick. Generous for photos and screenshots, small enough to decode safely. */
export const IMAGE_LIMITS = {
  maxBytes: 25 * 1024 * 1024,
  maxPixels: 50_000_000,
  minSide: 2,
} as const;

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ValidatedImage {
  format: ImageFormat;
  width: number;
  height: number;
}

/** The format the first bytes announce, whatever the file name says. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const startsWith = (sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
  if (startsWith([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith([0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith([0x52, 0x49, 0x46, 0x46]) && startsWith([0x57, 0x45, 0x42, 0x50], 8)) return 'webp';
  return undefined;
}

/**
 * Checks untrusted image bytes: size, magic bytes, a header sharp can read, and pixel limits checked
 * before anything decodes the pixels. Throws StorageError('rejected') with a message for the user.
 */
export async function validateImageBytes(bytes: Uint8Array): Promise<ValidatedImage> {
  checkImageSize(bytes.byteLength);
  const format = sniffFormat(bytes);
  if (!format) throw new StorageError('rejected', 'Not a PNG, JPEG or WebP image.');
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch {
    throw new StorageError('rejected', `The ${format.toUpperCase()} file is damaged and cannot be read.`);
  }
  if (!width || !height) throw new StorageError('rejected', 'The image has no size.');
  if (width * height > IMAGE_LIMITS.maxPixels) {
    throw new StorageError('rejected', `The image is ${width}×${height}; the limit is ${IMAGE_LIMITS.maxPixels / 1e6} megapixels.`);
  }
  if (Math.min(width, height) < IMAGE_LIMITS.minSide) throw new StorageError('rejected', `The image is only ${width}×${height} pixels.`);
  return { format, width, height };
}

/** The size check, also run on a file's size before reading it. */
export function checkImageSize(size: number): void {
  if (size === 0) throw new StorageError('rejected', 'The file is empty.');
  if (size > IMAGE_LIMITS.maxBytes) {
    throw new StorageError('rejected', `The image is ${mib(size)} MiB; the limit is ${mib(IMAGE_LIMITS.maxBytes)} MiB.`);
  }
}

function mib(n: number): string {
  return (n / 1024 / 1024).toFixed(1).replace(/\.0$/, '');
}
