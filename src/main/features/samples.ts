import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { StoredImage } from '../../shared/conversation.js';
import type { Sample } from '../../shared/ipc-features.js';
import type { ImageStore } from '../storage/images.js';

/** resources/samples/samples.json: images from the synthetic task (files beside it) with questions the demo model was trained on. */
const SampleList = z.array(z.object({ image: z.string().regex(/^[\w.-]+$/), questions: z.array(z.string().min(1)).min(1) }));

export const SAMPLES_FILE = 'samples.json';

/**
 * The samples offered in an empty chat, each image added to the image store like any dropped image
 * (the same file gives the same id), so a sample answers, compares and inspects as the user's own would.
 */
export async function loadSamples(
  dir: string,
  images: ImageStore,
  withThumbnail: (id: string) => Promise<{ image: StoredImage; thumbnail: string }>,
): Promise<Sample[]> {
  const text = await readFile(join(dir, SAMPLES_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return []; // a build without samples
  const samples: Sample[] = [];
  for (const { image, questions } of SampleList.parse(JSON.parse(text))) {
    const stored = await images.addBytes(await readFile(join(dir, image)));
    samples.push({ ...(await withThumbnail(stored.id)), questions });
  }
  return samples;
}
