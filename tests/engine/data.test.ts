import { readFile, readdir, stat, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { generateImage, generateSplit } from '../../src/engine/data/dataset.js';
import { FAMILIES, answerQuery, phrase, sampleQuery, type Query } from '../../src/engine/data/questions.js';
import { renderScene } from '../../src/engine/data/render.js';
import { Rng } from '../../src/engine/data/rng.js';
import { COLOURS, SIZES, sampleScene, type Scene, type SceneObject } from '../../src/engine/data/scene.js';
import { readVqaJsonl } from '../../src/engine/data/vqa.js';
import { VQA_TEST_SPLIT_JSONL } from '../../src/engine/data/vqa-test-split.js';
import { PRESET_NAMES, PRESET_SCHEDULES, scaleSchedule } from '../../src/shared/pruning.js';

const FIXTURE = 'resources/vqa-test';

function obj(partial: Partial<SceneObject> & Pick<SceneObject, 'shape' | 'colour' | 'x' | 'y'>): SceneObject {
  return { size: 'medium', rotation: 0, ...partial };
}

function scene(objects: SceneObject[]): Scene {
  const background = { kind: 'gradient', base: [90, 90, 90], accent: [150, 150, 150], period: 10, angle: 0, noiseSeed: 1 } as const;
  return { size: 336, background, objects };
}

// A hand-built scene: red circle (left), blue square (right, same row), blue star (below the square), green square labelled "K".
const hand = scene([
  obj({ shape: 'circle', colour: 'red', x: 60, y: 100 }),
  obj({ shape: 'square', colour: 'blue', x: 250, y: 110 }),
  obj({ shape: 'star', colour: 'blue', x: 255, y: 260 }),
  obj({ shape: 'square', colour: 'green', x: 150, y: 180, label: 'K' }),
]);

describe('questions answered from the scene graph', () => {
  const cases: Array<[Query, string | null]> = [
    [{ family: 'colour', shape: 'circle' }, 'red'],
    [{ family: 'colour', shape: 'star' }, 'blue'],
    [{ family: 'colour', shape: 'square' }, null], // two squares: no unique referent
    [{ family: 'colour', shape: 'hexagon' }, null],
    [{ family: 'shape', colour: 'red' }, 'circle'],
    [{ family: 'shape', colour: 'green' }, 'square'],
    [{ family: 'shape', colour: 'blue' }, null],
    [{ family: 'count' }, '4'],
    [{ family: 'count', shape: 'square' }, '2'],
    [{ family: 'count', colour: 'blue' }, '2'],
    [{ family: 'count', shape: 'triangle' }, '0'],
    [{ family: 'exist', ref: { colour: 'blue', shape: 'star' } }, 'yes'],
    [{ family: 'exist', ref: { colour: 'red', shape: 'square' } }, 'no'],
    [{ family: 'position', a: { colour: 'red', shape: 'circle' }, b: { colour: 'blue', shape: 'square' } }, 'left'],
    [{ family: 'position', a: { colour: 'blue', shape: 'square' }, b: { colour: 'red', shape: 'circle' } }, 'right'],
    [{ family: 'position', a: { colour: 'blue', shape: 'star' }, b: { colour: 'blue', shape: 'square' } }, 'below'],
    [{ family: 'position', a: { colour: 'blue', shape: 'square' }, b: { colour: 'blue', shape: 'star' } }, 'above'],
    [{ family: 'position', a: { colour: 'green', shape: 'square' }, b: { colour: 'blue', shape: 'star' } }, null], // diagonal
    [{ family: 'position', a: { colour: 'red', shape: 'star' }, b: { colour: 'blue', shape: 'star' } }, null], // absent
    [{ family: 'label', ref: { colour: 'green', shape: 'square' } }, 'k'],
    [{ family: 'label', ref: { colour: 'red', shape: 'circle' } }, null],
  ];
  it.each(cases)('%j -> %s', (query, expected) => {
    expect(answerQuery(hand, query)).toBe(expected);
  });

  it('phrases questions in plain English', () => {
    expect(phrase({ family: 'exist', ref: { colour: 'orange', shape: 'star' } })).toBe('Is there an orange star in the image?');
    expect(phrase({ family: 'count', shape: 'circle' })).toBe('How many circles are there?');
  });

  it('samples only well-posed questions, and absent objects for "no"', () => {
    const rng = new Rng(7);
    for (const family of FAMILIES) {
      for (let i = 0; i < 20; i++) {
        const q = sampleQuery(hand, family, rng, i % 2 === 0);
        if (family === 'label') expect(q).toEqual({ family, ref: { colour: 'green', shape: 'square' } });
        expect(q).not.toBeNull();
        expect(answerQuery(hand, q!)).not.toBeNull();
        if (family === 'exist') expect(answerQuery(hand, q!)).toBe(i % 2 === 0 ? 'yes' : 'no');
      }
    }
  });
});

describe('scene sampling', () => {
  it('places 1-8 objects inside the canvas without overlap', () => {
    const rng = new Rng(3);
    for (let s = 0; s < 200; s++) {
      const { objects, size } = sampleScene(rng);
      expect(objects.length).toBeGreaterThanOrEqual(1);
      expect(objects.length).toBeLessThanOrEqual(8);
      const r = (o: SceneObject) => SIZES[o.size];
      for (const [i, a] of objects.entries()) {
        expect(a.x - r(a)).toBeGreaterThanOrEqual(0);
        expect(a.y + r(a)).toBeLessThanOrEqual(size);
        for (const b of objects.slice(i + 1)) expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThan(r(a) + r(b));
      }
    }
  });
});

describe('splits', () => {
  it('is deterministic by seed and differs between splits', async () => {
    const a = generateImage('test', 17, 3);
    expect(generateImage('test', 17, 3)).toEqual(a);
    expect(generateImage('train', 17, 3)).not.toEqual(a);
    expect(Buffer.compare(await renderScene(a.scene), await renderScene(generateImage('test', 17, 3).scene))).toBe(0);
  });

  it('covers every family equally and balances exist yes/no', () => {
    for (const perImage of [1, 6]) {
      const questions = Array.from({ length: 120 }, (_, i) => generateImage('val', i, perImage).questions).flat();
      for (const family of FAMILIES) expect(questions.filter((q) => q.family === family)).toHaveLength((120 * perImage) / 6);
      const exist = questions.filter((q) => q.family === 'exist');
      expect(exist.filter((q) => q.answer === 'yes')).toHaveLength(exist.length / 2);
    }
  });

  it('renders each unlabelled object in its own colour, on a textured background', async () => {
    const { scene: s } = generateImage('test', 5, 1);
    const { data, info } = await sharp(await renderScene(s, 'png'))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [0, 1, 2].map((c) => data[(y * info.width + x) * info.channels + c]);
    for (const o of s.objects.filter((o) => !o.label)) {
      const pixel = at(o.x, o.y);
      const nearest = Object.entries(COLOURS).sort(([, p], [, q]) => dist(pixel, p) - dist(pixel, q))[0][0];
      expect(nearest).toBe(o.colour);
    }
    const corner = Array.from({ length: 16 }, (_, i) => at(i, 0)[0]);
    expect(Math.max(...corner) - Math.min(...corner)).toBeGreaterThan(4);
  });
});

describe('the committed test-split fixture', () => {
  it('is at most 5 MB, parses, and matches the generator', async () => {
    const files = await readdir(join(FIXTURE, 'images'));
    const sizes = await Promise.all(files.map((f) => stat(join(FIXTURE, 'images', f)).then((st) => st.size)));
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(5_000_000);
    const items = await readVqaJsonl(join(FIXTURE, 'test.jsonl'));
    expect(items).toHaveLength(files.length);
    const out = await mkdtemp(join(tmpdir(), 'vqa-'));
    const regenerated = await generateSplit(out, { split: 'test', count: 3 });
    expect(items.slice(0, 3).map(({ imagePath, ...item }) => item)).toEqual(regenerated);
    const [fresh, committed] = await Promise.all([readFile(join(out, regenerated[2].image)), readFile(items[2].imagePath)]);
    expect(Buffer.compare(fresh, committed)).toBe(0);
  });

  it('is the split `eval --split test` reads', async () => {
    expect(VQA_TEST_SPLIT_JSONL).toBe(join(process.cwd(), FIXTURE, 'test.jsonl'));
    expect(await readVqaJsonl(VQA_TEST_SPLIT_JSONL)).toHaveLength(300);
  });

  it('rejects malformed JSONL with the line number', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'vqa-')), 'bad.jsonl');
    await writeFile(file, '{"id":"a","image":"x.jpg","question":"q?","answer":"yes"}\n{"id":"b"}\n');
    await expect(readVqaJsonl(file)).rejects.toThrow(/bad\.jsonl:2: .*image/);
  });
});

describe('tools/demo-model/schedules.json', () => {
  it('holds the presets as the engine resolves them for each depth (rerun tools/demo-model/schedules.ts if not)', async () => {
    const table = JSON.parse(await readFile('tools/demo-model/schedules.json', 'utf8'));
    for (const [depth, presets] of Object.entries(table)) {
      for (const preset of PRESET_NAMES)
        expect((presets as Record<string, unknown>)[preset]).toEqual(scaleSchedule(PRESET_SCHEDULES[preset], Number(depth)));
    }
    expect(Object.keys(table)).toEqual(expect.arrayContaining(['8', '16'])); // the tiny and demo fixture models
  });
});

function dist(a: number[], b: readonly number[]): number {
  return a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
}
