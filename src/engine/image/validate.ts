import sharp, { type Metadata } from 'sharp';
import { type ImageFormat, SUPPORTED_IMAGE_NAMES } from '../../shared/images.js';
import { CodedError } from '../../shared/result.js';

/**
 * First line of defence for user images: recognise the format by its magic bytes, enforce byte and
 * pixel limits from the header (before decoding anything large), and turn every failure into an
 * ImageError with a message a user can act on. Decoding failures later on are reported the same way.
 */

export type { ImageFormat };
export type ImageProblem = 'empty' | 'not-an-image' | 'unsupported-format' | 'corrupt' | 'too-large';

/** A bad image; `invalid-request` so the reason survives IPC. */
export class ImageError extends CodedError {
  constructor(
    readonly problem: ImageProblem,
    message: string,
  ) {
    super('invalid-request', message);
  }
}

export interface ImageLimits {
  /** Largest accepted file, in bytes. */
  maxBytes: number;
  /** Largest accepted width * height (after the header is read, before decoding). */
  maxPixels: number;
  /** Largest accepted ratio of the long side to the short side: the model sees a square from the middle. */
  maxAspectRatio: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxBytes: 64 * 1024 * 1024, maxPixels: 64_000_000, maxAspectRatio: 32 };

export interface ImageInfo {
  format: ImageFormat;
  /** Size as displayed (EXIF orientation applied). */
  width: number;
  height: number;
  bytes: number;
}

const startsWith = (buf: Uint8Array, bytes: number[], at = 0) => bytes.every((b, i) => buf[at + i] === b);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** The format named by the file's first bytes; HEIC/BMP/SVG/ICO are recognised only to be refused by name (sharp's prebuilt libvips has no HEVC or BMP decoder, and SVG is a document, not a photo). */
export function sniffFormat(buf: Uint8Array): ImageFormat | 'heic' | 'bmp' | 'svg' | 'ico' | undefined {
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(buf, ascii('RIFF')) && startsWith(buf, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(buf, ascii('GIF87a')) || startsWith(buf, ascii('GIF89a'))) return 'gif';
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(buf, ascii('ftyp'), 4)) {
    const brand = String.fromCharCode(...buf.subarray(8, 12));
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx'].includes(brand)) return 'heic';
    if (brand === 'mif1' || brand === 'msf1') return 'heif'; // generic HEIF: AVIF inside decodes, HEVC does not
  }
  if (startsWith(buf, ascii('BM'))) return 'bmp';
  if (startsWith(buf, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  const head = Buffer.from(buf.subarray(0, 256)).toString('utf8').trimStart();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'svg';
  return undefined;
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * Checks that `buffer` is an image we can read and within `limits`, reading only its header.
 * Throws ImageError (empty, not-an-image, unsupported-format, corrupt, too-large).
 */
export async function validateImage(buffer: Uint8Array, given: Partial<ImageLimits> = {}): Promise<ImageInfo> {
  const limits = { ...DEFAULT_IMAGE_LIMITS, ...given };
  if (buffer.length === 0) throw new ImageError('empty', 'The image file is empty.');
  if (buffer.length > limits.maxBytes) {
    throw new ImageError('too-large', `The image is ${megabytes(buffer.length)}; the limit is ${megabytes(limits.maxBytes)}.`);
  }
  const sniffed = sniffFormat(buffer);
  if (sniffed === undefined)
    throw new ImageError('not-an-image', `This file is not an image the app reads (it takes ${SUPPORTED_IMAGE_NAMES}).`);
  if (sniffed === 'heic' || sniffed === 'bmp' || sniffed === 'svg' || sniffed === 'ico') {
    throw new ImageError(
      'unsupported-format',
      `${sniffed.toUpperCase()} images are not supported (the app takes ${SUPPORTED_IMAGE_NAMES}); convert it to PNG or JPEG.`,
    );
  }
  let meta: Metadata;
  try {
    meta = await sharp(buffer, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError('corrupt', `The ${sniffed.toUpperCase()} image is damaged or truncated (${(e as Error).message}).`);
  }
  // The size as displayed: EXIF orientations 5-8 swap width and height.
  const { width, height } = meta.autoOrient ?? meta;
  if (!width || !height) throw new ImageError('corrupt', `The ${sniffed.toUpperCase()} image has no readable size.`);
  if (width * height > limits.maxPixels) {
    throw new ImageError(
      'too-large',
      `The image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} MP); the limit is ${(limits.maxPixels / 1e6).toFixed(1)} MP.`,
    );
  }
  const ratio = Math.max(width, height) / Math.min(width, height);
  if (ratio > limits.maxAspectRatio) {
    throw new ImageError(
      'too-large',
      `The image is ${width}×${height}, ${Math.round(ratio)} times ${width > height ? 'wider than tall' : 'taller than wide'}; ` +
        `the limit is ${limits.maxAspectRatio}:1, since the model sees a square from its middle. Crop it to the part you are asking about.`,
    );
  }
  return { format: sniffed, width, height, bytes: buffer.length };
}
