import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageId, type StoredImage } from '../../shared/conversation.js';
import { IMAGE_FORMATS } from '../../shared/images.js';
import { mkdirPrivate, writeFileAtomic } from './atomicFile.js';
import { StorageError } from './errors.js';
import { ImageError, validateImage as validateImageBytes, type ImageFormat, type ImageLimits } from '../../engine/index.js';

/** Limits for images people drop, paste or pick: generous for photos and screenshots, small enough to decode safely. */
export const IMAGE_LIMITS: ImageLimits = { maxBytes: 25 * 1024 * 1024, maxPixels: 50_000_000, maxAspectRatio: 32 };

/** The one intake check for every way an image arrives (the engine's image validator, with the app's limits): the store's and the API server's. */
export const checkImage = (bytes: Uint8Array) => validateImageBytes(bytes, IMAGE_LIMITS);

const THUMBNAIL_EDGE = 256;
const FORMATS: ImageFormat[] = IMAGE_FORMATS.map((f) => f.format);

/**
 * Content-addressed image store: `<dir>/<sha256>.<ext>` plus `<dir>/thumbs/<sha256>.webp`. The same
 * image dropped twice is stored once. The renderer only ever sees the sha256 id.
 */
export class ImageStore {
  constructor(readonly dir: string) {}

  /** Every image that comes in (dropped, pasted or picked in the renderer): validate, then store under the content hash. */
  async addBytes(bytes: Uint8Array): Promise<StoredImage> {
    const image = await checkImage(bytes);
    const id = createHash('sha256').update(bytes).digest('hex');
    const file = this.file(id, image.format);
    // The thumbnail decodes every pixel, so it also catches files whose header is fine but whose data is not.
    const thumb = await makeThumbnail(bytes);
    await mkdirPrivate(join(this.dir, 'thumbs'));
    if (!(await exists(file))) await writeFileAtomic(file, bytes);
    if (!(await exists(this.thumbFile(id)))) await writeFileAtomic(this.thumbFile(id), thumb);
    return { id, format: image.format, width: image.width, height: image.height, bytes: bytes.byteLength };
  }

  /** Path of the stored original, for the engine. */
  async path(id: string): Promise<string> {
    for (const format of FORMATS) {
      const file = this.file(id, format);
      if (await exists(file)) return file;
    }
    throw new StorageError('not-found', `no image ${id}`);
  }

  async info(id: string): Promise<StoredImage> {
    const file = await this.path(id);
    const bytes = await readFile(file);
    const image = await checkImage(bytes);
    return { id, format: image.format, width: image.width, height: image.height, bytes: bytes.byteLength };
  }

  async thumbnail(id: string): Promise<Uint8Array> {
    await this.path(id);
    return readFile(this.thumbFile(id));
  }

  private file(id: string, format: ImageFormat): string {
    if (!ImageId.safeParse(id).success) throw new StorageError('invalid', `invalid image id: ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.${format === 'jpeg' ? 'jpg' : format}`);
  }

  private thumbFile(id: string): string {
    return join(this.dir, 'thumbs', `${id}.webp`);
  }
}

async function makeThumbnail(bytes: Uint8Array): Promise<Buffer> {
  try {
    return await sharp(bytes, { limitInputPixels: IMAGE_LIMITS.maxPixels })
      .rotate()
      .resize(THUMBNAIL_EDGE, THUMBNAIL_EDGE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 })
      .toBuffer();
  } catch {
    throw new ImageError('corrupt', 'The image data is damaged and cannot be decoded.');
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
