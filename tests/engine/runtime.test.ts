import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AskRequest, ChatTurn } from '../../src/shared/ipc-features.js';
import type { MethodSpec } from '../../src/shared/pruning.js';
import { Engine, type EngineEvent } from '../../src/engine/runtime/engine.js';
import { preprocessClip } from '../../src/engine/image/preprocess.js';
import { encodeChat } from '../../src/engine/text/chat.js';
import { loadReferenceModel, referenceGenerate, type ReferenceModel } from '../helpers/reference.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/**
 * The Engine facade end to end on a tiny checkpoint: import on first use, answers equal to the float64
 * reference's greedy tokens, the vision cache, multi-turn prompts, sampling, stop strings, cancellation,
 * provider fallback and clear errors for bad input.
 */

const root = mkdtempSync(join(tmpdir(), 'tps-runtime-'));
let checkpoint: SyntheticCheckpoint;
let reference: ReferenceModel;
let engine: Engine;
let image: Uint8Array;

/** A PNG exactly the model's input size, so preprocessing is exact (no resize). */
async function testImage(size: number): Promise<Uint8Array> {
  const rgb = Buffer.alloc(size * size * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37 + (i % 7) * 11) % 256;
  return new Uint8Array(
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

const NO_PRUNING: MethodSpec = { llm: { kind: 'none' } };
const ask = (extra: Partial<AskRequest> = {}, callbacks = {}) =>
  engine.ask(
    { model: checkpoint.dir, image, question: 'What is the colour of the sky?', method: NO_PRUNING, maxTokens: 6, ...extra },
    callbacks,
  );

/** The reference's greedy tokens for a conversation, with pixels from the same preprocessing. */
async function referenceTokens(turns: ChatTurn[], maxNewTokens: number): Promise<number[]> {
  const model = await engine.ensureModel(checkpoint.dir, 'cpu');
  const { ids } = encodeChat(model.tokenizer, turns, { template: model.chatTemplate, imageTokenId: model.config.imageTokenIndex });
  const { pixelValues } = await preprocessClip(image, model.clip);
  return referenceGenerate(reference, { inputIds: ids, pixelValues, maxNewTokens, eosTokenId: checkpoint.tokens.eos }).tokens;
}

beforeAll(async () => {
  checkpoint = await makeSyntheticCheckpoint(join(root, 'hf-tiny'), { preset: 'tiny' });
  reference = loadReferenceModel(checkpoint.dir);
  image = await testImage(checkpoint.shape.imageSize);
  engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
});

afterAll(async () => {
  await engine.unload();
  rmSync(root, { recursive: true, force: true });
});

describe('Engine', () => {
  it("imports a Hugging Face folder on first use and answers with the reference's greedy tokens", async () => {
    const streamed: string[] = [];
    const result = await ask({}, { onToken: (t: string) => streamed.push(t) });
    const expected = await referenceTokens([{ role: 'user', text: 'What is the colour of the sky?', image: true }], 6);
    const model = await engine.ensureModel(checkpoint.dir, 'cpu');
    expect(result.answer).toBe(model.tokenizer.decode(expected.filter((t) => t !== checkpoint.tokens.eos)));
    expect(streamed.join('')).toBe(result.answer);
    expect(result.stats.generatedTokens).toBe(expected.filter((t) => t !== checkpoint.tokens.eos).length);
    expect(result.stats.visualTokensTotal).toBe(checkpoint.numVisualTokens);
    expect(result.stats.visualTokensKept).toBe(checkpoint.numVisualTokens);
    expect(result.stats.executionProvider).toBe('cpu');
    expect((await engine.listModels()).length).toBe(1);
  });

  it('reuses the vision output of an image it has seen', async () => {
    const first = await ask({ question: 'Is it red?' });
    const second = await ask({ question: 'Is it red?' });
    expect(second.stats.visionCached).toBe(true);
    expect(second.answer).toBe(first.answer);
  });

  it('re-prefills the whole conversation each turn', async () => {
    const turns: ChatTurn[] = [
      { role: 'user', text: 'What is in the image?', image: true },
      { role: 'assistant', text: 'a red square' },
      { role: 'user', text: 'Where is it?' },
    ];
    const result = await ask({ turns, question: undefined, maxTokens: 4 });
    const expected = (await referenceTokens(turns, 4)).filter((t) => t !== checkpoint.tokens.eos);
    const model = await engine.ensureModel(checkpoint.dir, 'cpu');
    expect(result.answer).toBe(model.tokenizer.decode(expected));
    expect(result.stats.promptTokens).toBeGreaterThan(20);
  });

  it('sampling with a seed is reproducible, and a different seed can differ', async () => {
    const sampling = { temperature: 1.5, topP: 0.95 };
    const a = await ask({ sampling: { ...sampling, seed: 11 }, maxTokens: 12 });
    const b = await ask({ sampling: { ...sampling, seed: 11 }, maxTokens: 12 });
    const others = await Promise.all(
      [12, 13, 14].map(async (seed) => (await ask({ sampling: { ...sampling, seed }, maxTokens: 12 })).answer),
    );
    expect(b.answer).toBe(a.answer);
    expect(others.some((answer) => answer !== a.answer)).toBe(true);
  });

  it('ends at a stop string without streaming it', async () => {
    const full = await ask({ maxTokens: 12 });
    const stop = full.answer.slice(3, 6);
    const streamed: string[] = [];
    const cut = await ask({ maxTokens: 12, stop: [stop] }, { onToken: (t: string) => streamed.push(t) });
    expect(cut.finishReason).toBe('stop');
    expect(cut.answer).toBe(full.answer.slice(0, full.answer.indexOf(stop)));
    expect(streamed.join('')).toBe(cut.answer);
  });

  it('stops between steps when cancelled, keeping what was generated', async () => {
    const controller = new AbortController();
    const streamed: string[] = [];
    const onToken = (t: string) => {
      streamed.push(t);
      controller.abort();
    };
    const result = await ask({ maxTokens: 50 }, { signal: controller.signal, onToken });
    expect(result.finishReason).toBe('cancelled');
    expect(result.stats.generatedTokens).toBeLessThan(50);
    expect(streamed.length).toBeLessThanOrEqual(2); // the piece that cancelled, and whatever it had held back
    expect(streamed.join('')).toBe(result.answer);

    const inPrefill = new AbortController();
    const onEvent = (e: EngineEvent) => {
      if (e.type === 'stage' && e.stage === 'prefill') inPrefill.abort();
    };
    expect(await ask({ maxTokens: 50 }, { signal: inPrefill.signal, onEvent })).toMatchObject({ finishReason: 'cancelled', answer: '' });

    const before = new AbortController();
    before.abort();
    await expect(ask({ maxTokens: 50 }, { signal: before.signal })).rejects.toThrow(/abort/i);
  });

  it('runs concurrent requests one at a time, each as if alone', async () => {
    const alone = await ask({ maxTokens: 5 });
    const order: string[] = [];
    const [a, b] = await Promise.all([
      ask({ maxTokens: 5 }, { onToken: () => order.push('a') }),
      ask({ maxTokens: 5, sampling: { temperature: 1, seed: 3 } }, { onToken: () => order.push('b') }),
    ]);
    expect(a.answer).toBe(alone.answer);
    expect(b.answer).toBe((await ask({ maxTokens: 5, sampling: { temperature: 1, seed: 3 } })).answer);
    expect(order.join('')).toMatch(/^a+b+$/);
  });

  it('falls back to cpu when the asked provider cannot start, and says why', async () => {
    const result = await ask({ ep: 'cuda', maxTokens: 2 });
    expect(result.provider.active).toBe('cpu');
    expect(result.provider.failures[0]).toMatchObject({ provider: 'cuda' });
    expect(result.stats.executionProvider).toBe('cpu');
  });

  it('bad input gets a clear error, and the engine keeps working', async () => {
    await expect(ask({ image: new TextEncoder().encode('definitely not an image') })).rejects.toThrow(/image/i);
    const truncated = image.slice(0, Math.floor(image.length / 2));
    await expect(ask({ image: truncated })).rejects.toThrow(/damaged|truncated|corrupt/i);
    await expect(ask({ image: join(root, 'missing.png') })).rejects.toThrow(/cannot read the image/);
    await expect(ask({ question: '  ' })).rejects.toThrow(/question is required/);
    await expect(engine.ask({ model: 'no-such-model', image, question: 'hi', method: NO_PRUNING })).rejects.toThrow(
      /no model "no-such-model"/,
    );
    expect((await ask({ maxTokens: 1 })).stats.generatedTokens).toBeLessThanOrEqual(1);
  });

  it('a damaged model pack fails to load with the file named, and the engine keeps working', async () => {
    const pack = (await engine.ensureModel(checkpoint.dir, 'cpu')).dir;
    const damaged = join(root, 'damaged-pack');
    cpSync(pack, damaged, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(damaged, 'manifest.json'), 'utf8')) as { graphs: { layers: string[] } };
    const layerFile = join(damaged, manifest.graphs.layers[1]);
    writeFileSync(layerFile, readFileSync(layerFile).subarray(0, 100));
    await expect(ask({ model: damaged })).rejects.toThrow(/protobuf|parse|load|model/i);
    rmSync(join(damaged, manifest.graphs.layers[1]));
    await expect(ask({ model: damaged })).rejects.toThrow(new RegExp(`missing.*${manifest.graphs.layers[1]}`));
    expect((await ask({ maxTokens: 1 })).stats.generatedTokens).toBeLessThanOrEqual(1);
  });
});
