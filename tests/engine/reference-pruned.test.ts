// The pruned float64 reference (tests/helpers/reference-pruned.ts) checked against the unpruned
// reference, hand-written formulas of method spec §2-§4, and the invariants of spec §8.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAbsDiff } from '../helpers/diff.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { gatherRows, type Mat } from '../helpers/reference-math.js';
import {
  loadReferenceModel,
  range,
  referenceDecoderLayer,
  referenceGenerate,
  referenceHead,
  referencePrefill,
  referenceProbe,
  type ReferenceModel,
} from '../helpers/reference.js';
import { referencePrunedForward, topkAscending, type ReferenceTransPrune } from '../helpers/reference-pruned.js';

const tmp = mkdtempSync(join(tmpdir(), 'reference-pruned-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const isSubset = (a: Int32Array, b: Int32Array) => [...a].every((v) => b.includes(v));
const strictlyIncreasing = (a: Int32Array) => a.every((v, i) => i === 0 || v > a[i - 1]);

// 6-layer tiny model, N = 16: prune after layers 2, 3, 4 down to 12, 8, 4 visual tokens.
const schedule: ReferenceTransPrune = { kind: 'transprune', accumulate: [2, 3, 4], prune: [2, 3, 4], ratios: [0.75, 0.5, 0.25] };

let ck: SyntheticCheckpoint;
let model: ReferenceModel;
let input: { inputIds: number[]; pixelValues: Float64Array };
const PREFIX = 3; // <s> + two text tokens before the image
beforeAll(async () => {
  ck = await makeSyntheticCheckpoint(join(tmp, 'tiny6'), { layers: 6 });
  model = loadReferenceModel(ck.dir);
  input = {
    inputIds: [ck.tokens.bos, 400, 401, ck.tokens.image, 410, 420, 430, 440],
    pixelValues: new Float64Array(3 * 28 * 28).map((_, i) => Math.sin(i * 0.61) * 1.3),
  };
});

describe('TransPrune reference: no-op equivalence (spec §8.1)', () => {
  it("'none', no prune layers and all-1.0 ratios equal the unpruned model, prefill and greedy decode", () => {
    const unpruned = referencePrefill(model, input);
    const greedy = referenceGenerate(model, { ...input, maxNewTokens: 5 });
    for (const method of [{ kind: 'none' } as const, { ...schedule, prune: [], ratios: [] }, { ...schedule, ratios: [1, 1, 1] }]) {
      const run = referencePrunedForward(model, { ...input, maxNewTokens: 5 }, method);
      expect(maxAbsDiff(run.logits.data, unpruned.logits.data)).toBe(0);
      expect(run.tokens).toEqual(greedy.tokens);
      // KV-cached decode vs full recomputation: same logits to rounding.
      run.stepLogits.forEach((l, i) => expect(maxAbsDiff(l, greedy.stepLogits[i])).toBeLessThan(1e-10));
    }
  });
});

describe('TransPrune reference: structure (spec §8.2-8.6)', () => {
  it('keeps floor(N r) of the original N per stage, nested and sorted; per-layer counts and KV lengths', () => {
    const run = referencePrunedForward(model, { ...input, maxNewTokens: 3 }, schedule);
    const textLen = input.inputIds.length - 1;
    expect(run.stages.map((s) => s.layer)).toEqual([2, 3, 4]);
    expect(run.stages.map((s) => s.keptOriginal.length)).toEqual([12, 8, 4]);
    expect(run.visualCountPerLayer).toEqual([16, 16, 12, 8, 4, 4]);
    expect(run.prefillLenPerLayer).toEqual([16, 16, 12, 8, 4, 4].map((n) => n + textLen));
    const [k1, k2, k3] = run.stages.map((s) => s.keptOriginal);
    for (const k of [k1, k2, k3]) expect(strictlyIncreasing(k)).toBe(true);
    expect(isSubset(k3, k2) && isSubset(k2, k1)).toBe(true);
    expect(k1.every((i) => i >= 0 && i < 16)).toBe(true);
  });

  it('layers up to the first prune, and the text before the image in every layer, match the unpruned run', () => {
    const unpruned = referencePrefill(model, input);
    const run = referencePrunedForward(model, input, schedule);
    for (let l = 0; l <= 2; l++) expect(maxAbsDiff(run.hiddenStates[l].data, unpruned.hiddenStates[l].data)).toBe(0);
    for (let l = 0; l <= model.text.layers; l++) {
      expect(
        maxAbsDiff(run.hiddenStates[l].data.subarray(0, PREFIX * 64), unpruned.hiddenStates[l].data.subarray(0, PREFIX * 64)),
      ).toBeLessThan(1e-12);
    }
    expect(maxAbsDiff(run.hiddenStates[6].data.slice(-64), unpruned.hiddenStates[6].data.slice(-64))).toBeGreaterThan(1e-6);
  });

  it('equals running the layers by hand: gather the kept rows after each prune, positions renumbered', () => {
    const run = referencePrunedForward(model, input, schedule);
    let x: Mat = run.hiddenStates[0];
    let positions = range(0, x.rows);
    let kept = range(0, 16);
    for (let l = 0; l < model.text.layers; l++) {
      x = referenceDecoderLayer(model, l, x, positions, null).out;
      const stage = run.stages.find((s) => s.layer === l + 1);
      if (!stage) continue;
      const keepLocal = [...stage.keptOriginal].map((orig) => kept.indexOf(orig));
      x = gatherRows(x, [...range(0, PREFIX), ...keepLocal.map((i) => PREFIX + i), ...range(PREFIX + kept.length, x.rows)]);
      positions = range(0, x.rows);
      kept = [...stage.keptOriginal];
    }
    expect(maxAbsDiff(referenceHead(model, x).data, run.logits.data)).toBe(0);
  });

  it("positions: compact renumbers after each prune, 'original' keeps them; decode positions per layer", () => {
    const compact = referencePrunedForward(model, input, schedule);
    expect(compact.positionsPerLayer[2]).toEqual(range(0, 12 + 7));
    expect(compact.decodePosition(0, 1)).toBe(23); // S0 = 23 prefill tokens
    expect(compact.decodePosition(3, 2)).toBe(8 + 7 + 1);
    const original = referencePrunedForward(model, input, { ...schedule, positions: 'original' });
    const expectedPositions = [
      ...range(0, PREFIX),
      ...Array.from(original.stages[0].keptOriginal, (i) => PREFIX + i),
      ...range(PREFIX + 16, 23),
    ];
    expect(original.positionsPerLayer[2]).toEqual(expectedPositions);
    expect(original.decodePosition(5, 3)).toBe(23 + 2);
    expect(original.stages[0].keptOriginal).toEqual(compact.stages[0].keptOriginal); // same inputs up to the first prune
    expect(maxAbsDiff(original.logits.data, compact.logits.data)).toBeGreaterThan(1e-9);
  });
});

describe('TransPrune reference: scores (spec §2-§4, §8.7, §8.11)', () => {
  /** Spec §2.2 written out once more, from the UNPRUNED run's side outputs (valid up to the first prune). */
  function stageOneByHand(direction: 'code' | 'paper', alpha: number) {
    const unpruned = referencePrefill(model, input);
    const S = unpruned.embeds.rows;
    const visual = range(PREFIX, PREFIX + 16);
    const moduleTerm = (ratio: Float64Array, cos: Float64Array) => {
      const d = Array.from(cos, (c) => (direction === 'code' ? 1 - c : 1 - Math.abs(c)));
      const z = d.reduce((s, v) => s + Math.exp(v), 0);
      return visual.map((t) => (ratio[t] * Math.exp(d[t])) / z);
    };
    const side = unpruned.side[1]; // 1-based layer 2 is the only accumulated layer <= 2
    const attn = moduleTerm(side.attnRatio, side.attnCos);
    const mlp = moduleTerm(side.mlpRatio, side.mlpCos);
    const ttvRaw = attn.map((a, i) => a + mlp[i]);
    const ttvSum = ttvRaw.reduce((s, v) => s + v, 0);
    const ttv = ttvRaw.map((v) => v / (ttvSum + 1e-8));
    const probe = referenceProbe(model, 2, unpruned.hiddenStates[2], range(0, S), PREFIX + 16); // layer 3's q/k (0-based 2)
    const igaRaw = visual.map((t) => probe[t]);
    const igaSum = igaRaw.reduce((s, v) => s + v, 0);
    const iga = igaRaw.map((v) => v / (igaSum + 1e-8));
    return { ttv, iga, score: ttv.map((v, i) => alpha * v + (1 - alpha) * iga[i]) };
  }

  it('stage 1 TTV, IGA and score equal the formulas evaluated on the unpruned run', () => {
    for (const direction of ['code', 'paper'] as const) {
      const run = referencePrunedForward(model, input, { ...schedule, direction });
      const hand = stageOneByHand(direction, 0.5);
      expect(maxAbsDiff(run.stages[0].ttv!, hand.ttv)).toBeLessThan(1e-14);
      expect(maxAbsDiff(run.stages[0].iga!, hand.iga)).toBeLessThan(1e-14);
      expect(maxAbsDiff(run.stages[0].score, hand.score)).toBeLessThan(1e-14);
      expect(run.stages[0].keptOriginal).toEqual(topkAscending(hand.score, 12));
    }
    const code = referencePrunedForward(model, input, schedule).stages[0].ttv!;
    const paper = referencePrunedForward(model, input, { ...schedule, direction: 'paper' }).stages[0].ttv!;
    expect(maxAbsDiff(code, paper)).toBeGreaterThan(1e-4);
  });

  it('normalized TTV and IGA sum to 1 at every stage; later stages accumulate re-indexed TTV', () => {
    const run = referencePrunedForward(model, input, schedule);
    for (const s of run.stages) {
      expect(s.ttv!.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 6);
      expect(s.iga!.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 6);
      expect(s.score.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 6);
      expect(s.ttv!.every((v) => v >= 0) && s.iga!.every((v) => v >= 0)).toBe(true);
    }
    expect(run.stages[1].ttv).toHaveLength(12);
    expect(run.stages[2].ttv).toHaveLength(8);
  });

  it('alpha = 1 ranks by TTV only, alpha = 0 by IGA only', () => {
    const hand = stageOneByHand('code', 0.5);
    expect(referencePrunedForward(model, input, { ...schedule, alpha: 1 }).stages[0].keptOriginal).toEqual(topkAscending(hand.ttv, 12));
    expect(referencePrunedForward(model, input, { ...schedule, alpha: 0 }).stages[0].keptOriginal).toEqual(topkAscending(hand.iga, 12));
  });

  it('refuses schedules it cannot run: pruning after the last layer, or no instruction tokens for IGA', () => {
    expect(() => referencePrunedForward(model, input, { ...schedule, accumulate: [6], prune: [6], ratios: [0.5] })).toThrow(
      /after the last layer/,
    );
    const imageLast = { ...input, inputIds: [ck.tokens.bos, 400, 401, ck.tokens.image] };
    expect(() => referencePrunedForward(model, imageLast, schedule)).toThrow(/instruction tokens after the image/);
  });

  it('top-k returns ascending indices and breaks ties toward the lower index', () => {
    expect(topkAscending([0.1, 0.5, 0.5, 0.2, 0.5], 2)).toEqual(Int32Array.from([1, 2]));
    expect(topkAscending([3, 1, 2], 3)).toEqual(Int32Array.from([0, 1, 2]));
  });
});

describe('FastV reference', () => {
  it("ranks by layer K's last-token attention (its own input) and keeps floor(N (1 - R)) after layer K", () => {
    const unpruned = referencePrefill(model, input);
    const run = referencePrunedForward(model, { ...input, maxNewTokens: 2 }, { kind: 'fastv', k: 2, r: 0.75 });
    const S = unpruned.embeds.rows;
    const attention = referenceProbe(model, 1, unpruned.hiddenStates[1], range(0, S), S - 1);
    const scores = attention.slice(PREFIX, PREFIX + 16);
    expect(run.stages).toHaveLength(1);
    expect(run.stages[0].layer).toBe(2);
    expect(maxAbsDiff(run.stages[0].score, scores)).toBeLessThan(1e-15);
    expect(run.stages[0].keptOriginal).toEqual(topkAscending(scores, 4));
    expect(run.visualCountPerLayer).toEqual([16, 16, 4, 4, 4, 4]);
    expect(run.tokens).toHaveLength(2);
  });
});

describe('PDrop reference', () => {
  it("ranks by the next layer's last-token attention at each boundary and keeps floor(N lambda^s)", () => {
    const unpruned = referencePrefill(model, input);
    const run = referencePrunedForward(model, input, { kind: 'pdrop', layers: [2, 4], lambda: 0.5 });
    const S = unpruned.embeds.rows;
    const scores = referenceProbe(model, 2, unpruned.hiddenStates[2], range(0, S), S - 1).slice(PREFIX, PREFIX + 16);
    expect(maxAbsDiff(run.stages[0].score, scores)).toBeLessThan(1e-15);
    expect(run.stages[0].keptOriginal).toEqual(topkAscending(scores, 8));
    expect(run.visualCountPerLayer).toEqual([16, 16, 8, 8, 4, 4]);
    expect(isSubset(run.stages[1].keptOriginal, run.stages[0].keptOriginal)).toBe(true);
  });
});

describe('TransPrune-High schedule on a 13-layer, 64-token model', () => {
  it('runs 64 -> 56 -> 40 -> 8 with the paper layer numbers', async () => {
    const big = await makeSyntheticCheckpoint(join(tmp, 'deep'), { layers: 13, imageSize: 56, patchSize: 7 });
    const deep = loadReferenceModel(big.dir);
    const pixels = new Float64Array(3 * 56 * 56).map((_, i) => Math.cos(i * 0.013) * 1.1);
    const run = referencePrunedForward(
      deep,
      { inputIds: [big.tokens.bos, 400, big.tokens.image, 410, 420], pixelValues: pixels },
      {
        kind: 'transprune',
        accumulate: [7, 8, 9, 10, 11, 12],
        prune: [7, 9, 12],
        ratios: [0.875, 0.625, 0.125],
      },
    );
    expect(run.visualCountPerLayer).toEqual([...Array(7).fill(64), 56, 56, 40, 40, 40, 8]);
    expect(run.stages.map((s) => s.keptOriginal.length)).toEqual([56, 40, 8]);
  });
});
