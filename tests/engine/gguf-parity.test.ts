// GGUF models against transformers loading the very same files (`from_pretrained(dir, gguf_file=...)`, which
// dequantizes with gguf-py): a tiny random Llama written by tools/demo-model/make_gguf_fixtures.py in every
// supported tensor type (q/k rows permuted as llama.cpp's converter does), imported as an fp32 pack so the
// engine computes on exactly the dequantized weights. Prompt ids from the GGUF's own tokenizer and chat template,
// the last position's logits, and greedy answers must agree.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMethod } from '../../src/shared/pruning.js';
import { prefill } from '../../src/engine/runtime/prefill.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { relativeError } from '../helpers/diff.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/gguf');
const TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as const;

interface Case {
  prompt: string;
  ids: number[];
  lastLogits: number[];
  answerIds: number[];
  answer: string;
}
const fixture: Record<(typeof TYPES)[number], Case[]> = JSON.parse(readFileSync(join(FIXTURES, 'tiny-llama.json'), 'utf8'));

const root = mkdtempSync(join(tmpdir(), 'tps-gguf-parity-'));
const engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
afterAll(async () => {
  await engine.unload();
  rmSync(root, { recursive: true, force: true });
});

describe.each(TYPES)('tiny Llama GGUF, matrices in %s, vs transformers', (type) => {
  const file = join(FIXTURES, `tiny-llama-${type.toLowerCase()}.gguf`);
  const cases = fixture[type];

  it('tokenizes the chat prompt and gives the last logits of transformers to 1e-4', async () => {
    await importCheckpoint(file, join(root, 'store'), { dtype: 'fp32', name: `tiny-${type}` });
    const model = await engine.ensureModel(`tiny-${type}`, 'cpu');
    expect(model.config.vision).toBeNull();
    for (const c of cases) {
      const { ids } = encodeChat(model.tokenizer, [{ role: 'user', text: c.prompt }], {
        template: model.chatTemplate,
        content: model.chatContent,
        imageTokenId: model.config.imageTokenIndex,
      });
      expect(ids).toEqual(c.ids);
      const result = await prefill(model, { ids, imageTokenId: model.config.imageTokenIndex });
      expect(relativeError(result.logits, c.lastLogits)).toBeLessThan(1e-4);
    }
  });

  it('answers greedily as transformers does', async () => {
    for (const c of cases) {
      const result = await engine.ask({
        model: `tiny-${type}`,
        question: c.prompt,
        method: parseMethod('none'),
        maxTokens: c.answerIds.length,
      });
      expect(result.answer).toBe(c.answer);
    }
  });
});
