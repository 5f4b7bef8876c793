import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageError } from '../engine/index.js';
import { checkImage, IMAGE_LIMITS } from '../main/storage/images.js';
import { ApiError } from './openai.js';

/**
 * A request's image on its way to the engine: read from its `data:` URL (or a `file://` URL when the
 * server allows them), checked as the app checks a dropped image, and written to a private folder for
 * the engine process, which is sent paths. Remote URLs are refused: the app never fetches from the
 * network on a request's behalf.
 */
export class ImageIntake {
  private constructor(
    private readonly dir: string,
    private readonly allowFileUrls: boolean,
  ) {}

  static async open(allowFileUrls: boolean): Promise<ImageIntake> {
    // mkdtemp makes the folder 0700: other users cannot read what people sent.
    return new ImageIntake(await mkdtemp(join(tmpdir(), 'transprune-api-')), allowFileUrls);
  }

  /** The image as a file the engine can read, for the length of one request: `release` deletes it. */
  async fileFor(url: string): Promise<{ path: string; release(): Promise<void> }> {
    const bytes = await this.bytesOf(url);
    let format: string;
    try {
      format = (await checkImage(bytes)).format;
    } catch (e) {
      if (e instanceof ImageError) throw new ApiError(400, 'invalid_image', e.message, 'messages');
      throw e;
    }
    const path = join(this.dir, `${randomUUID()}.${format}`);
    await writeFile(path, bytes, { mode: 0o600 });
    return { path, release: () => rm(path, { force: true }) };
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async bytesOf(url: string): Promise<Uint8Array> {
    const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
    if (scheme === 'data:') return bytesOfDataUrl(url);
    if (scheme === 'file:') {
      if (!this.allowFileUrls) {
        throw refused(
          'file:// image URLs are off on this server: send the image as a data: URL, or start the server with --allow-file-urls.',
        );
      }
      return readImageFile(url);
    }
    if (scheme === 'http:' || scheme === 'https:') {
      throw refused(
        'Remote image URLs are refused: this server never fetches from the network on a request’s behalf. Send the image as a data: URL (base64).',
      );
    }
    throw refused('An image_url must be a data: URL (data:image/png;base64,...).');
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function bytesOfDataUrl(url: string): Uint8Array {
  const comma = url.indexOf(',');
  const header = comma < 0 ? '' : url.slice(5, comma).toLowerCase();
  const [mime, ...params] = header.split(';');
  if (!mime.startsWith('image/') || !params.includes('base64'))
    throw refused('An image data: URL must be base64 image data: data:image/<type>;base64,<data>.');
  const data = url.slice(comma + 1);
  if (!BASE64.test(data)) throw refused('The image data: URL is not valid base64.');
  return Buffer.from(data, 'base64');
}

async function readImageFile(url: string): Promise<Uint8Array> {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch {
    throw refused(`Not a file URL this machine can open: ${url.slice(0, 200)}`);
  }
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw refused(`No image file at ${path}.`);
  if (info.size > IMAGE_LIMITS.maxBytes) {
    throw refused(`The image file is ${(info.size / 2 ** 20).toFixed(1)} MB; the limit is ${IMAGE_LIMITS.maxBytes / 2 ** 20} MB.`);
  }
  return readFile(path);
}

function refused(message: string): ApiError {
  return new ApiError(400, 'invalid_image_url', message, 'messages');
}
