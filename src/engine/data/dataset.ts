import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FAMILIES, answerQuery, phrase, sampleQuery, type Family, type Query } from './questions.js';
import { DEFAULT_QUALITY, renderScene, type ImageFormat } from './render.js';
import { Rng } from './rng.js';
import { sampleScene, type Scene } from './scene.js';
import { toJsonl, type VqaItem } from './vqa.js';

/** Base seeds of the splits; item i of a split is generated from hash(seed, i) alone. */
export const SPLIT_SEEDS = { train: 1_000_003, val: 2_000_003, test: 3_000_017 } as const;
export type Split = keyof typeof SPLIT_SEEDS;

export interface GenerateOptions {
  split: Split;
  count: number;
  /** First image index: lets several processes generate disjoint parts of one split. */
  start?: number;
  questionsPerImage?: number;
  format?: ImageFormat;
  quality?: number;
  /** Also write every image's scene graph (objects with position, size, shape, colour, label) to `scenes-<split>[-<start>].jsonl`. */
  scenes?: boolean;
}

export interface GeneratedImage {
  index: number;
  scene: Scene;
  questions: Array<{ query: Query; question: string; answer: string; family: Family }>;
}

const SCENE_TRIES = 200;

/**
 * Scene and questions of image `index`. Question q (counted over the whole split) has family
 * FAMILIES[q % 6], so families are equally frequent, and exist questions alternate yes/no.
 */
export function generateImage(split: Split, index: number, questionsPerImage = 1): GeneratedImage {
  const rng = Rng.forItem(SPLIT_SEEDS[split], index);
  for (let t = 0; t < SCENE_TRIES; t++) {
    const scene = sampleScene(rng);
    const questions = [];
    for (let j = 0; j < questionsPerImage; j++) {
      const q = index * questionsPerImage + j;
      const family = FAMILIES[q % FAMILIES.length];
      const wantYes = Math.floor(q / FAMILIES.length) % 2 === 0;
      const query = sampleQuery(scene, family, rng, wantYes);
      const answer = query && answerQuery(scene, query);
      if (!query || answer === null) break;
      questions.push({ query, question: phrase(query), answer, family });
    }
    if (questions.length === questionsPerImage) return { index, scene, questions };
  }
  throw new Error(`no scene fits the questions of ${split} image ${index}`);
}

/** Writes `images/<id>.<ext>` and `<split>.jsonl` (LLaVA eval format) into `outDir`; returns the items. */
export async function generateSplit(outDir: string, opts: GenerateOptions, onImage?: (done: number) => void): Promise<VqaItem[]> {
  const { split, count, start = 0, questionsPerImage = 1, format = 'jpeg', quality = DEFAULT_QUALITY, scenes = false } = opts;
  await mkdir(join(outDir, 'images'), { recursive: true });
  const ext = format === 'png' ? 'png' : 'jpg';
  const items: VqaItem[] = [];
  const sceneLines: string[] = [];
  for (let i = start; i < start + count; i++) {
    const { scene, questions } = generateImage(split, i, questionsPerImage);
    const image = `images/${split}-${String(i).padStart(6, '0')}.${ext}`;
    await writeFile(join(outDir, image), await renderScene(scene, format, quality));
    questions.forEach((q, j) => items.push({ id: `${split}-${i}-${j}`, image, question: q.question, answer: q.answer, family: q.family }));
    if (scenes) sceneLines.push(JSON.stringify({ image, objects: scene.objects }));
    onImage?.(i - start + 1);
  }
  const suffix = start === 0 ? '' : `-${start}`;
  await writeFile(join(outDir, `${split}${suffix}.jsonl`), toJsonl(items));
  if (scenes) await writeFile(join(outDir, `scenes-${split}${suffix}.jsonl`), `${sceneLines.join('\n')}\n`);
  return items;
}
