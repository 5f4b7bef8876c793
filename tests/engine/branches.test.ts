import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMethod, positionPolicy } from '../../src/shared/pruning.js';
import { RunTimer } from '../../src/cli/bench/timed.js';
import { createMethod } from '../../src/engine/pruning/index.js';
import { Engine, type AskResult } from '../../src/engine/runtime/engine.js';
import { generate, generateBranches, type Generation } from '../../src/engine/runtime/generate.js';
import type { ModelSessions } from '../../src/engine/runtime/graphs.js';
import type { LoadedModel } from '../../src/engine/runtime/model.js';
import { prefill, prefillBranches, type PrefillInput, type PrefillResult } from '../../src/engine/runtime/prefill.js';
import { makeTinyPack } from '../helpers/tiny-pack.js';

/**
 * Shared-prefix prefill for compare (issue 4): several methods prefilled as branches must give each
 * method exactly what it gets alone (logits, kept tokens, per-layer KV lengths and positions, greedy
 * answer), while the layers before the first prune run once. 14 layers, GQA, 8x8 = 64 visual tokens.
 */

const LAYERS = 14;
const NEW_TOKENS = 5;

const root = mkdtempSync(join(tmpdir(), 'tps-branches-'));
let packDir: string;
let model: LoadedModel;
let input: PrefillInput;

beforeAll(async () => {
  ({
    dir: packDir,
    model,
    input,
  } = await makeTinyPack(root, {
    name: 'tiny14',
    preset: 'tiny-gqa',
    layers: LAYERS,
    imageSize: 56,
    patchSize: 7,
    seed: 5,
    question: 'Which shape is left of the red circle?',
    pixels: (size) => Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.23) * 1.1 + Math.cos(i * 0.05) * 0.7),
  }));
});

afterAll(async () => {
  await model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** A fresh method per run: methods keep per-prefill state (accumulated TTV). */
function branch(text: string) {
  const spec = parseMethod(text);
  const method =
    spec.llm.kind === 'none' && !spec.projector ? undefined : createMethod(spec, { numLayers: LAYERS, pruning: model.pruningOverrides });
  return { method, positions: positionPolicy(spec.llm) };
}

/** The model with each layer session's runs counted. */
function countingLayers(sessions: ModelSessions): { model: ModelSessions; runs: () => number[] } {
  const timers = sessions.layers.map(() => new RunTimer());
  return {
    model: { ...new RunTimer().model(sessions), layers: sessions.layers.map((s, l) => timers[l].wrap(s)) },
    runs: () => timers.map((t) => t.calls),
  };
}

/** What the paper's High preset prunes first (after layer 7 of 32), scaled to this depth as docs/pruning.md states. */
const FIRST_HIGH_PRUNE = Math.max(1, Math.round((7 * LAYERS) / 32));

function expectSamePrefill(actual: PrefillResult, alone: PrefillResult): void {
  expect(Array.from(actual.logits)).toEqual(Array.from(alone.logits));
  expect(Array.from(actual.keptOriginal)).toEqual(Array.from(alone.keptOriginal));
  expect(actual.cacheLength).toEqual(alone.cacheLength);
  expect(actual.nextPosition).toEqual(alone.nextPosition);
  expect(actual.visualCounts).toEqual(alone.visualCounts);
  actual.caches.forEach((cache, l) => {
    expect(cache.length, `layer ${l} key`).toEqual(alone.caches[l].length);
    expect(Array.from(cache.keys)).toEqual(Array.from(alone.caches[l].keys));
    expect(Array.from(cache.values)).toEqual(Array.from(alone.caches[l].values));
  });
}

describe('prefillBranches', () => {
  it('none vs transprune-high: each branch equals its method alone; layers before the first prune run once', async () => {
    expect(FIRST_HIGH_PRUNE).toBe(3);
    const alone = [await prefill(model, input), await prefill(model, input, branch('transprune-high'))];
    const counted = countingLayers(model);
    const { branches, sharedLayers } = await prefillBranches(counted.model, input, [branch('none'), branch('transprune-high')]);

    branches.forEach((result, i) => expectSamePrefill(result, alone[i]));
    expect(alone[1].keptOriginal.length).toBeLessThan(64); // it did prune
    expect(sharedLayers).toBe(FIRST_HIGH_PRUNE);
    // Run separately every layer runs twice; branched, the shared prefix runs once.
    expect(counted.runs()).toEqual(Array.from({ length: LAYERS }, (_, l) => (l < FIRST_HIGH_PRUNE ? 1 : 2)));
  });

  it('branches that never differ share every layer; a projector-side method differs from the start', async () => {
    const same = countingLayers(model);
    const twins = await prefillBranches(same.model, input, [branch('none'), branch('none')]);
    expect(twins.sharedLayers).toBe(LAYERS);
    expect(same.runs()).toEqual(Array(LAYERS).fill(1));
    expectSamePrefill(twins.branches[1], await prefill(model, input));

    const divprune = await prefillBranches(model, input, [branch('none'), branch('divprune:count=32+transprune-high')]);
    expect(divprune.sharedLayers).toBe(0);
    expectSamePrefill(divprune.branches[1], await prefill(model, input, branch('divprune:count=32+transprune-high')));
  });

  it('three methods with different prune layers and position policies fork where each one prunes', async () => {
    const texts = ['fastv:k=2,r=0.5', 'transprune-high', 'transprune-high:positions=original'];
    const alone: PrefillResult[] = [];
    for (const text of texts) alone.push(await prefill(model, input, branch(text)));
    const counted = countingLayers(model);
    const { branches, sharedLayers } = await prefillBranches(counted.model, input, texts.map(branch));
    branches.forEach((result, i) => expectSamePrefill(result, alone[i]));
    // FastV prunes after layer K = 2, so only layers 1-2 are common to all three; the two TransPrune
    // branches keep the same tokens after layer 3 but then place them at different positions.
    expect(sharedLayers).toBe(2);
    expect(counted.runs()).toEqual(Array.from({ length: LAYERS }, (_, l) => (l < 2 ? 1 : l < FIRST_HIGH_PRUNE ? 2 : 3)));
  });
});

describe('generateBranches and Engine.compare', () => {
  it('greedy answers decoded from the shared prefill equal each method run alone', async () => {
    const texts = ['none', 'transprune-high'];
    const alone: Generation[] = [];
    for (const text of texts) alone.push(await generate(model, model.tokenizer, input, { maxTokens: NEW_TOKENS, ...branch(text) }));
    const streamed = ['', ''];
    const { generations, sharedLayers } = await generateBranches(
      model,
      model.tokenizer,
      input,
      texts.map((text, i) => ({ ...branch(text), onText: (delta: string) => (streamed[i] += delta) })),
      { maxTokens: NEW_TOKENS },
    );
    expect(sharedLayers).toBe(FIRST_HIGH_PRUNE);
    generations.forEach((g, i) => {
      expect(g.tokenIds).toEqual(alone[i].tokenIds);
      expect(g.text).toBe(alone[i].text);
      expect(streamed[i]).toBe(g.text);
      expect(g.prefill.cacheLength).toEqual(alone[i].prefill.cacheLength);
    });
    expect(generations[0].tokenIds.length).toBeGreaterThan(1);
  });

  it('decodes the answers side by side, and reports each one as soon as it is complete', async () => {
    const order: number[] = [];
    const finished: { branch: number; generation: Generation; after: number }[] = [];
    const { generations } = await generateBranches(
      model,
      model.tokenizer,
      input,
      ['none', 'transprune-high'].map((text, i) => ({
        ...branch(text),
        onText: () => order.push(i),
        onFinished: (generation: Generation) => finished.push({ branch: i, generation, after: order.length }),
      })),
      { maxTokens: NEW_TOKENS },
    );
    // The second answer starts streaming before the first one ends: neither waits for the other.
    expect(order.indexOf(1)).toBeLessThan(order.lastIndexOf(0));
    expect(order.filter((b) => b === 0).length).toBeGreaterThan(1);
    expect(finished.map((f) => f.branch).sort()).toEqual([0, 1]);
    for (const f of finished) expect(f.generation).toBe(generations[f.branch]);
  });

  it('a cancel before prefill ends cancels every branch', async () => {
    const controller = new AbortController();
    controller.abort();
    const { generations } = await generateBranches(model, model.tokenizer, input, [branch('none'), branch('transprune-high')], {
      signal: controller.signal,
    });
    expect(generations.map((g) => [g.finishReason, g.tokenIds.length])).toEqual([
      ['cancelled', 0],
      ['cancelled', 0],
    ]);
  });

  it('Engine.compare answers as Engine.ask does per method, with sharedLayers in the stats and a trace each', async () => {
    const image = join(root, 'image.png');
    writeFileSync(
      image,
      await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c33' } })
        .png()
        .toBuffer(),
    );
    const engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
    try {
      const methods = [parseMethod('none'), parseMethod('transprune-high')];
      const request = { model: packDir, image, question: 'What colour is it?', maxTokens: NEW_TOKENS, trace: true };
      const alone: AskResult[] = [];
      for (const method of methods) alone.push(await engine.ask({ ...request, method }));
      const tokens: string[] = ['', ''];
      const compared = await engine.compare({ ...request, methods }, { onToken: (i, text) => (tokens[i] += text) });
      expect(compared.sharedLayers).toBe(FIRST_HIGH_PRUNE);
      compared.results.forEach((r, i) => {
        expect(r.answer).toBe(alone[i].answer);
        expect(tokens[i]).toBe(r.answer);
        expect(r.visualCounts).toEqual(alone[i].visualCounts);
        expect(r.stats.sharedLayers).toBe(FIRST_HIGH_PRUNE);
        expect(r.trace!.layers.map((l) => l.kept ?? null)).toEqual(alone[i].trace!.layers.map((l) => l.kept ?? null));
        expect(r.trace!.method.label).toBe(alone[i].trace!.method.label);
      });
      expect(alone[1].stats.sharedLayers).toBeUndefined();
    } finally {
      await engine.unload();
    }
  });
});
