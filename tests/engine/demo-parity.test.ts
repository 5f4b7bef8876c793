import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import { DEMO_MODEL_DIR } from '../../src/engine/data/demo-model.js';
import { holdsCheckpoint } from '../../src/engine/pack/checkpoint-folder.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import type { LoadedModel } from '../../src/engine/runtime/model.js';
import { prefill } from '../../src/engine/runtime/prefill.js';
import { encodeVisual } from '../../src/engine/runtime/vision.js';
import { prepareImage } from '../../src/engine/image/anyres.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { relativeError } from '../helpers/diff.js';
import { expectSameKept, type ReferenceStage } from '../helpers/kept-parity.js';

/**
 * The shipped demo model (resources/demo-model: SmolLM2's GGUF and the trained mmproj) against transformers'
 * LlavaForConditionalGeneration built from the same two files (tests/fixtures/demo/parity.json, written by
 * tools/demo-model/make_demo_fixtures.py): prompt ids, projected visual tokens, every decoder layer and the
 * prefill logits within 1e-4 (fp32: the pack imported at fp32 holds the GGUF's weights dequantized, as
 * transformers loads them), the greedy answers on 20 test items, and the kept visual tokens at every stage of
 * six methods from the PyTorch implementation of the released code. Skipped while no demo model ships.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'tests/fixtures/demo/parity.json');
const TOLERANCE = 1e-4;

interface Summary {
  shape: number[];
  rows: Record<string, number[]>;
}
interface Parity {
  model: { language: string; language_sha256: string; mmproj_sha256: string };
  detailed: Array<{
    id: string;
    prompt_ids: number[];
    image_features: Summary;
    layer_outputs: Summary[];
    prefill_logits_last: { top20_ids: number[] };
  }>;
  greedy: Array<{ id: string; image: string; question: string; greedy_text: string }>;
  pruning: Array<{
    id: string;
    image: string;
    question: string;
    methods: Record<string, { stages: ReferenceStage[] }>;
  }>;
}

const shipped = holdsCheckpoint(DEMO_MODEL_DIR) && existsSync(FIXTURE);
const fixture: Parity | undefined = shipped ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : undefined;
const root = mkdtempSync(join(tmpdir(), 'tps-demo-parity-'));
const engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
let pack: string;
let model: LoadedModel;

afterAll(async () => {
  await engine.unload();
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(!shipped)('the shipped demo model vs transformers (fp32)', () => {
  beforeAll(async () => {
    pack = (await importCheckpoint(DEMO_MODEL_DIR, join(root, 'store'), { dtype: 'fp32' })).dir;
    model = await engine.ensureModel(pack, 'cpu');
  }, 300_000);

  it('prompt ids, projected visual tokens, every layer and the logits within 1e-4', async () => {
    const c = fixture!.detailed[0];
    const item = fixture!.greedy.find((g) => g.id === c.id)!;
    const image = await prepareImage(readFileSync(resolve(ROOT, item.image)), model.clip, model.viewSpec);
    const { ids } = encodeChat(model.tokenizer, [{ role: 'user', text: item.question, image: true }], {
      template: model.chatTemplate,
      content: model.chatContent,
      imageTokenId: model.imageTokenId,
    });
    const visual = (await encodeVisual(model, image))!;
    const width = c.image_features.shape[1];
    // The fixture marks the image once (-1) where the prompt holds its placeholder.
    const marked = ids.map((id) => (id === model.imageTokenId ? -1 : id));
    expect(marked.filter((id, i) => id !== -1 || marked[i - 1] !== -1)).toEqual(c.prompt_ids);
    for (const [r, expected] of Object.entries(c.image_features.rows))
      expect(relativeError(visual.features.subarray(Number(r) * width, (Number(r) + 1) * width), expected), `visual ${r}`).toBeLessThan(
        TOLERANCE,
      );
    const hidden: Float32Array[] = [];
    const result = await prefill(
      model,
      { ids, imageTokenId: model.imageTokenId, visual },
      { onLayerOutput: (_, h) => hidden.push(h.slice()) },
    );
    expect(hidden).toHaveLength(c.layer_outputs.length);
    hidden.forEach((h, l) => {
      for (const [r, expected] of Object.entries(c.layer_outputs[l].rows))
        expect(relativeError(h.subarray(Number(r) * width, (Number(r) + 1) * width), expected), `layer ${l} row ${r}`).toBeLessThan(
          TOLERANCE,
        );
    });
    const top = [...result.logits.keys()].sort((a, b) => result.logits[b] - result.logits[a]).slice(0, 5);
    expect(top).toEqual(c.prefill_logits_last.top20_ids.slice(0, 5));
  }, 120_000);

  it('greedy answers equal transformers on 20 test items', async () => {
    const answers: string[] = [];
    for (const g of fixture!.greedy) {
      const { answer } = await engine.ask({
        model: pack,
        image: resolve(ROOT, g.image),
        question: g.question,
        method: parseMethod('none'),
        maxTokens: 8,
      });
      answers.push(answer.trim());
    }
    expect(answers).toEqual(fixture!.greedy.map((g) => g.greedy_text));
  }, 300_000);

  it('kept tokens equal the PyTorch implementation of the released code at every stage', async () => {
    let compared = 0;
    let total = 0;
    for (const c of fixture!.pruning)
      for (const [method, { stages }] of Object.entries(c.methods)) {
        const { trace } = await engine.ask({
          model: pack,
          image: resolve(ROOT, c.image),
          question: c.question,
          method: parseMethod(method),
          maxTokens: 1,
        });
        const pruned = trace!.layers.filter((l) => l.kept);
        compared += expectSameKept(`${c.id} ${method}`, stages, pruned);
        total += stages.length;
      }
    // Ties end a comparison early only rarely: nearly every stage is checked.
    expect(compared / total).toBeGreaterThan(0.95);
  }, 900_000);
});
