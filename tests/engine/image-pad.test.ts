import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { prepareImage } from '../../src/engine/image/anyres.js';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, parseClipParams, preprocessClip } from '../../src/engine/image/preprocess.js';
import { readCheckpoint } from '../../src/engine/pack/checkpoint.js';
import { viewFraming } from '../../src/shared/trace.js';

/**
 * LLaVA-1.5's pad-to-square (the official code's expand2square: the image centred on a square of its long
 * side filled with the processor's mean colour, `int(x * 255)`), against llava-hf's centre crop.
 */

const root = mkdtempSync(join(tmpdir(), 'tp-pad-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const processor = (aspect: 'pad' | 'crop') =>
  parseClipParams({
    size: { shortest_edge: 28 },
    crop_size: { height: 28, width: 28 },
    image_mean: OPENAI_CLIP_MEAN,
    image_std: OPENAI_CLIP_STD,
    image_aspect_ratio: aspect,
  });

/** A picture whose every pixel is known: x and y in two channels, a constant in the third. */
function picture(width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set([(x * 9) % 256, (y * 11 + 30) % 256, 200], (y * width + x) * 3);
  return rgb;
}
const png = (rgb: Buffer, width: number, height: number) =>
  sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();

/** The official expand2square, written out: background = int(mean * 255), image pasted at ((side - w) // 2, (side - h) // 2). */
function expand2square(rgb: Buffer, width: number, height: number): { rgb: Buffer; side: number } {
  const side = Math.max(width, height);
  const background = OPENAI_CLIP_MEAN.map((m) => Math.floor(m * 255));
  const out = Buffer.alloc(side * side * 3);
  for (let i = 0; i < side * side; i++) out.set(background, i * 3);
  const [left, top] = [Math.floor((side - width) / 2), Math.floor((side - height) / 2)];
  for (let y = 0; y < height; y++) rgb.copy(out, ((top + y) * side + left) * 3, y * width * 3, (y + 1) * width * 3);
  return { rgb: out, side };
}

describe('pad to square', () => {
  it('pads with the mean colour (122, 116, 104), the image centred, before normalizing: every pixel as the official code makes it', async () => {
    // 28 wide, 19 tall: the square is the model's own 28 px, so no resize blurs the comparison; an odd gap puts the extra row below.
    const rgb = picture(28, 19);
    const reference = expand2square(rgb, 28, 19);
    expect([...reference.rgb.subarray(0, 3)]).toEqual([122, 116, 104]);
    const out = await preprocessClip(await png(rgb, 28, 19), processor('pad'));
    expect([out.width, out.height]).toEqual([28, 28]);
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < 28 * 28; i++) {
        const expected = (reference.rgb[i * 3 + c] / 255 - OPENAI_CLIP_MEAN[c]) / OPENAI_CLIP_STD[c];
        expect(out.pixelValues[c * 784 + i]).toBeCloseTo(expected, 5);
      }
  });

  it('at any size equals cropping the expand2square image: the resize sees the padded square, tall or wide', async () => {
    for (const [width, height] of [
      [90, 40],
      [33, 70],
    ]) {
      const rgb = picture(width, height);
      const square = expand2square(rgb, width, height);
      const padded = await preprocessClip(await png(rgb, width, height), processor('pad'));
      const reference = await preprocessClip(await png(square.rgb, square.side, square.side), processor('crop'));
      expect(Array.from(padded.pixelValues)).toEqual(Array.from(reference.pixelValues));
    }
  });

  it('the engine path frames the same way and records the padded square as the view, so "What the model sees" says pad', async () => {
    const bytes = await png(picture(90, 40), 90, 40);
    const spec = { tileSize: 28, grid: 2, withCls: false };
    const padded = await prepareImage(bytes, processor('pad'), spec);
    expect(Array.from(padded.views[0])).toEqual(Array.from((await preprocessClip(bytes, processor('pad'))).pixelValues));
    expect(padded.layout.tiles[0].rect).toEqual({ x: 0, y: -25, width: 90, height: 90 });
    const image = { hash: 'a'.repeat(64), width: 90, height: 40, modelWidth: 28, modelHeight: 28, grid: { rows: 2, cols: 2 } };
    expect(viewFraming({ ...image, layout: padded.layout })).toBe('pad');
    const cropped = await prepareImage(bytes, processor('crop'), spec);
    expect(viewFraming({ ...image, layout: cropped.layout })).toBe('crop');
  });
});

describe('which checkpoints pad', () => {
  const variant = async (name: string, edit: (dir: string) => void) => {
    const { dir } = await makeSyntheticCheckpoint(join(root, name), { preset: 'tiny' });
    edit(dir);
    const { image } = await readCheckpoint(dir);
    return image && 'image_aspect_ratio' in image ? image.image_aspect_ratio : undefined;
  };
  const editJson = (path: string, change: (json: Record<string, unknown>) => void) => {
    const json = JSON.parse(readFileSync(path, 'utf8'));
    change(json);
    writeFileSync(path, JSON.stringify(json));
  };

  it("crops for llava-hf's processor, pads for a LLaVA-1.5 that does not say, follows config.json when it does", async () => {
    expect(await variant('hf', () => undefined)).toBe('crop'); // processor_class LlavaProcessor
    expect(await variant('plain', (d) => editJson(join(d, 'preprocessor_config.json'), (j) => delete j.processor_class))).toBe('pad');
    expect(await variant('says-pad', (d) => editJson(join(d, 'config.json'), (j) => (j.image_aspect_ratio = 'pad')))).toBe('pad');
    expect(
      await variant('says-square', (d) => {
        editJson(join(d, 'preprocessor_config.json'), (j) => delete j.processor_class);
        editJson(join(d, 'config.json'), (j) => (j.image_aspect_ratio = 'square'));
      }),
    ).toBe('crop');
  });
});
