// One LLaVA-1.5 checkpoint in two forms: the Hugging Face fixture (tests/fixtures/reference/tiny-llava) and the same
// weights as llama.cpp keeps them, a language GGUF and its mmproj (tests/fixtures/gguf/tiny-llava, written by
// tools/demo-model/make_gguf_fixtures.py the way llama.cpp's converters do). Imported as fp32, both must give the
// same prompt ids, the same answer, and keep the same visual tokens at every TransPrune stage.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { parseMethod } from '../../src/shared/pruning.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HF = join(ROOT, 'tests/fixtures/reference/tiny-llava');
const GGUF = join(ROOT, 'tests/fixtures/gguf/tiny-llava');
// Square images: llama.cpp (and so a GGUF pack) pads to a square where llava-hf's processor crops; on a square both agree.
const IMAGES = ['resources/vqa-test/images/test-000000.jpg', 'tests/fixtures/reference/images/alpha.png'];
const QUESTIONS = ['What color is the square?', 'How many objects are there?'];
const METHODS = ['none', 'transprune-high', 'fastv', 'iga'];

describe('tiny LLaVA: Hugging Face folder vs GGUF pair', () => {
  const root = mkdtempSync(join(tmpdir(), 'tps-gguf-llava-'));
  const store = join(root, 'store');
  const engine = new Engine({ modelStore: store, ep: 'cpu' });
  beforeAll(async () => {
    await importCheckpoint(HF, store, { dtype: 'fp32', name: 'hf' });
    const pair = await importCheckpoint(join(GGUF, 'tiny-llava-f32.gguf'), store, {
      dtype: 'keep',
      mmproj: join(GGUF, 'mmproj-tiny-llava-f32.gguf'),
      name: 'gguf',
    });
    expect(pair.manifest.dtype).toBe('fp32');
    expect(pair.manifest.numVisualTokens).toBe(576);
    expect(pair.manifest.image).toMatchObject({ image_aspect_ratio: 'pad' });
  }, 120_000);
  afterAll(async () => {
    await engine.unload();
    rmSync(root, { recursive: true, force: true });
  });

  it('imports the folder of the pair as well (how the demo model ships)', async () => {
    const again = await importCheckpoint(GGUF, store, {});
    expect(again.alreadyImported).toBe(true);
    expect(again.manifest.name).toBe('gguf');
  });

  const cases = IMAGES.flatMap((image) => QUESTIONS.flatMap((question) => METHODS.map((method) => ({ image, question, method }))));
  /** One model at a time (the engine holds one): every case on the folder's pack, then on the pair's. */
  const run = async (model: string) => {
    const out = [];
    for (const c of cases)
      out.push(await engine.ask({ model, image: join(ROOT, c.image), question: c.question, method: parseMethod(c.method), maxTokens: 6 }));
    return out;
  };

  it('gives the same prompt, answer and kept tokens for 4 methods on 2 images x 2 questions', async () => {
    const hf = await run('hf');
    const gguf = await run('gguf');
    const kept = (r: (typeof hf)[number]) => r.trace.layers.filter((l) => l.kept).map((l) => [l.layer, l.kept]);
    cases.forEach((c, i) => {
      const what = `${c.image} "${c.question}" ${c.method}`;
      expect(gguf[i].stats.promptTokens, what).toBe(hf[i].stats.promptTokens);
      expect(gguf[i].answer, what).toBe(hf[i].answer);
      expect(kept(gguf[i]), what).toEqual(kept(hf[i]));
      if (c.method !== 'none') expect(kept(hf[i]).length, what).toBeGreaterThan(0);
    });
    expect(new Set(hf.map((r) => r.answer)).size).toBeGreaterThan(1);
  });
});
