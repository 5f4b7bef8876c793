import { z } from 'zod';

/**
 * The one list of image formats the app takes, for the picker, the intake check and its messages:
 * those sharp's prebuilt libvips decodes from bytes (sharp.format[...].input.buffer). AVIF and generic
 * HEIF go through its libheif, which has the AV1 decoder only (no HEVC, so no iPhone HEIC).
 */
export const IMAGE_FORMATS = [
  { format: 'png', name: 'PNG', mimeTypes: ['image/png'], suffixes: ['.png'] },
  { format: 'jpeg', name: 'JPEG', mimeTypes: ['image/jpeg'], suffixes: ['.jpg', '.jpeg', '.jpe', '.jfif'] },
  { format: 'webp', name: 'WebP', mimeTypes: ['image/webp'], suffixes: ['.webp'] },
  { format: 'gif', name: 'GIF', mimeTypes: ['image/gif'], suffixes: ['.gif'] },
  { format: 'tiff', name: 'TIFF', mimeTypes: ['image/tiff'], suffixes: ['.tif', '.tiff'] },
  { format: 'avif', name: 'AVIF', mimeTypes: ['image/avif'], suffixes: ['.avif'] },
  { format: 'heif', name: 'HEIF (AV1)', mimeTypes: ['image/heif'], suffixes: ['.heif', '.hif'] },
] as const;

export const ImageFormat = z.enum(IMAGE_FORMATS.map((f) => f.format) as [ImageFormatName, ...ImageFormatName[]]);
type ImageFormatName = (typeof IMAGE_FORMATS)[number]['format'];
export type ImageFormat = z.infer<typeof ImageFormat>;

/** The file picker's `accept`: every MIME type and file suffix of the list. */
export const IMAGE_ACCEPT = IMAGE_FORMATS.flatMap((f) => [...f.mimeTypes, ...f.suffixes]).join(',');

/** The list in words, for messages: "PNG, JPEG, WebP, GIF, TIFF, AVIF or HEIF (AV1)". */
export const SUPPORTED_IMAGE_NAMES = `${IMAGE_FORMATS.slice(0, -1)
  .map((f) => f.name)
  .join(', ')} or ${IMAGE_FORMATS.at(-1)!.name}`;
