import { describe, expect, it } from 'vitest';
import { parseMethod, parseSchedule, withOverrides, type MethodSpec } from '../../src/shared/pruning.js';
import { createMethod, type LayerBoundary, type PruningMethod, type SideOutputs } from '../../src/engine/pruning/index.js';
import { divPrune } from '../../src/engine/pruning/methods/divprune.js';
import { TraceRecorder } from '../../src/engine/trace/recorder.js';
import { FLOPS_PRESETS } from '../../src/engine/pruning/flops.js';
import { readTrace, traceToJson, traceToLayerCsv, traceToTokenCsv } from '../../src/shared/trace-files.js';
import { singleViewLayout } from '../../src/shared/trace.js';

/**
 * The methods driven through a synthetic prefill: per-token side outputs and probe attention are
 * fixed functions of (layer, original token identity), so the expected selections can be computed
 * independently, in original-index space, straight from the formulas of method spec §9.
 */

const PREFIX = 5; // system tokens before the image
const SUFFIX = 7; // instruction tokens after the image

function hash(...xs: number[]): number {
  let h = 2166136261;
  for (const x of xs) h = Math.imul(h ^ (x + 0x9e3779b9), 16777619) >>> 0;
  return ((h ^ (h >>> 13)) >>> 0) / 2 ** 32;
}
/** Identity of each sequence position: visual tokens by grid index, text by a negative id. */
function identities(visual: Int32Array): number[] {
  return [...Array.from({ length: PREFIX }, (_, i) => -1 - i), ...visual, ...Array.from({ length: SUFFIX }, (_, i) => -100 - i)];
}
const sideOf = (layer: number, ids: number[]): SideOutputs => ({
  attnRatio: Float32Array.from(ids, (id) => 0.2 + hash(layer, id, 1)),
  attnCos: Float32Array.from(ids, (id) => 2 * hash(layer, id, 2) - 1),
  mlpRatio: Float32Array.from(ids, (id) => 0.2 + hash(layer, id, 3)),
  mlpCos: Float32Array.from(ids, (id) => 2 * hash(layer, id, 4) - 1),
});
/** Head- and query-mean attention over all keys, as the probe graph returns it. */
function probeOf(probeLayer: number, queryStart: number, ids: number[]): Float32Array {
  const raw = ids.map((id) => hash(probeLayer, queryStart === ids.length - 1 ? 1 : 0, id) + 0.01);
  const z = raw.reduce((a, b) => a + b, 0);
  return Float32Array.from(raw, (x) => x / z);
}

interface Run {
  visualPerLayer: number[];
  kept: Int32Array[];
  probes: [number, number, number][];
  side: number[];
}

async function simulate(method: PruningMethod, n: number, numLayers: number): Promise<Run> {
  let visual = Int32Array.from({ length: n }, (_, i) => i);
  const run: Run = { visualPerLayer: [], kept: [], probes: [], side: [] };
  for (let layer = 0; layer < numLayers; layer++) {
    const ids = identities(visual);
    run.visualPerLayer.push(visual.length);
    const wants = method.wantsSideOutputs(layer);
    if (wants) run.side.push(layer + 1);
    const b: LayerBoundary = {
      layer,
      layerNumber: layer + 1,
      numLayers,
      originalVisualCount: n,
      entryVisualCount: n,
      visualStart: PREFIX,
      visualCount: visual.length,
      seqLen: ids.length,
      keptOriginal: visual,
      side: wants ? sideOf(layer, ids) : undefined,
      probe: async (probeLayer, queryStart) => {
        run.probes.push([layer + 1, probeLayer, queryStart]);
        return probeOf(probeLayer, queryStart, ids);
      },
    };
    const kept = await method.afterLayer(b);
    if (kept) {
      visual = Int32Array.from(kept, (k) => visual[k]);
      run.kept.push(visual);
    }
  }
  return run;
}

/** Spec §9 written out in original-index space: stores indexed by grid id, restricted at each stage. */
function expectedTransPrune(
  n: number,
  acc: number[],
  prune: number[],
  ratios: number[],
  alpha: number,
  direction: 'code' | 'paper',
): number[][] {
  let visual = Array.from({ length: n }, (_, i) => i);
  const store = new Map<number, Map<number, number>>(); // layer -> grid id -> TTV
  const stages: number[][] = [];
  const lastPrune = prune[prune.length - 1];
  for (let layer = 1; layer <= lastPrune; layer++) {
    const ids = identities(Int32Array.from(visual));
    if (acc.includes(layer) && alpha > 0) {
      const s = sideOf(layer - 1, ids);
      const ttv = new Map<number, number>();
      const w = (cos: Float32Array) => {
        const e = Array.from(cos, (c) => Math.exp(direction === 'code' ? 1 - c : 1 - Math.abs(c)));
        const z = e.reduce((a, b) => a + b, 0);
        return e.map((x) => x / z);
      };
      const wa = w(s.attnCos),
        wm = w(s.mlpCos);
      ids.forEach((id, t) => {
        if (id >= 0) ttv.set(id, s.attnRatio[t] * wa[t] + s.mlpRatio[t] * wm[t]);
      });
      store.set(layer, ttv);
    }
    const stage = prune.indexOf(layer);
    if (stage < 0) continue;
    const ttvAcc = visual.map((id) => [...store.entries()].filter(([l]) => l <= layer).reduce((sum, [, m]) => sum + m.get(id)!, 0));
    const ttvSum = ttvAcc.reduce((a, b) => a + b, 0);
    const att = probeOf(layer, PREFIX + visual.length, ids).slice(PREFIX, PREFIX + visual.length);
    const attSum = att.reduce((a, b) => a + b, 0);
    const score = visual.map((_, i) => alpha * (ttvAcc[i] / (ttvSum + 1e-8)) + (1 - alpha) * (att[i] / (attSum + 1e-8)));
    const k = Math.floor(n * ratios[stage]);
    const order = visual.map((_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
    visual = order
      .slice(0, k)
      .sort((a, b) => a - b)
      .map((i) => visual[i]);
    stages.push(visual);
  }
  return stages;
}

const dims = (numLayers: number) => ({ numLayers });

describe('TransPrune method (synthetic prefill)', () => {
  it.each([
    [0.5, 'code'],
    [0.5, 'paper'],
    [0.3, 'code'],
    [1, 'code'],
    [0, 'code'],
  ] as const)('selects as spec §9 with alpha %s, direction %s; counts, nesting, sorted order', async (alpha, direction) => {
    const spec = withOverrides(parseMethod(`transprune-high:direction=${direction}`), { alpha: alpha === 0.5 ? undefined : alpha });
    const run = await simulate(createMethod(spec, dims(32)), 576, 32);
    expect(run.visualPerLayer).toEqual([...Array(7).fill(576), 504, 504, 360, 360, 360, ...Array(20).fill(72)]);
    const expected = expectedTransPrune(576, [7, 8, 9, 10, 11, 12], [7, 9, 12], [0.875, 0.625, 0.125], alpha, direction);
    expect(run.kept.map((k) => Array.from(k))).toEqual(expected);
    for (let s = 1; s < run.kept.length; s++) {
      const prev = new Set(run.kept[s - 1]);
      for (const k of run.kept[s]) expect(prev.has(k)).toBe(true);
    }
    // Side outputs exactly at the accumulation layers (not at all for IGA-only); probes only at prune layers.
    expect(run.side).toEqual(alpha > 0 ? [7, 8, 9, 10, 11, 12] : []);
    expect(run.probes).toEqual(
      alpha < 1
        ? [
            [7, 7, PREFIX + 576],
            [9, 9, PREFIX + 504],
            [12, 12, PREFIX + 360],
          ]
        : [],
    );
  });

  it('is a no-op with every ratio 1.0 (identity selections)', async () => {
    const spec = withOverrides(parseMethod('transprune-high'), { schedule: parseSchedule('2-4/2,4/1,1') });
    const run = await simulate(createMethod(spec, dims(6)), 20, 6);
    expect(run.visualPerLayer).toEqual(Array(6).fill(20));
    for (const k of run.kept) expect(Array.from(k)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('uses the depth-scaled schedule on a 12-layer model and a manifest override when present', async () => {
    const run = await simulate(createMethod(parseMethod('transprune-high'), dims(12)), 64, 12);
    expect(run.visualPerLayer).toEqual([64, 64, 64, 56, 40, 8, 8, 8, 8, 8, 8, 8]);
    const override = { presets: { 'transprune-high': parseSchedule('2-3/2,3/0.5,0.25') } };
    const run2 = await simulate(createMethod(parseMethod('transprune-high'), { numLayers: 12, pruning: override }), 64, 12);
    expect(run2.visualPerLayer).toEqual([64, 64, 32, ...Array(9).fill(16)]);
  });

  it('resets its state at layer 0, so a second prefill selects the same tokens', async () => {
    const method = createMethod(parseMethod('transprune-high'), dims(12));
    const a = await simulate(method, 64, 12);
    const b = await simulate(method, 64, 12);
    expect(b.kept).toEqual(a.kept);
  });
});

describe('baselines (synthetic prefill)', () => {
  it("FastV ranks by layer K's last-token attention (probe after layer K-1) and prunes after K", async () => {
    const run = await simulate(createMethod(parseMethod('fastv:k=3,r=0.75'), dims(8)), 40, 8);
    expect(run.probes).toEqual([[2, 2, PREFIX + 40 + SUFFIX - 1]]);
    expect(run.visualPerLayer).toEqual([40, 40, 40, 10, 10, 10, 10, 10]);
    const att = probeOf(2, PREFIX + 40 + SUFFIX - 1, identities(Int32Array.from({ length: 40 }, (_, i) => i))).slice(PREFIX, PREFIX + 40);
    const top = Array.from({ length: 40 }, (_, i) => i)
      .sort((a, b) => att[b] - att[a] || a - b)
      .slice(0, 10)
      .sort((a, b) => a - b);
    expect(Array.from(run.kept[0])).toEqual(top);
  });

  it("PDrop keeps 576 -> 288 -> 144 -> 72 at layers 8/16/24 from the next layer's last-token probe", async () => {
    const run = await simulate(createMethod(parseMethod('pdrop'), dims(32)), 576, 32);
    expect(run.kept.map((k) => k.length)).toEqual([288, 144, 72]);
    expect(run.probes.map(([after, probe]) => [after, probe])).toEqual([
      [8, 8],
      [16, 16],
      [24, 24],
    ]);
  });

  it("random keeps the schedule's budget, is seeded, and nests", async () => {
    const a = await simulate(createMethod(parseMethod('random:seed=1'), dims(32)), 576, 32);
    const b = await simulate(createMethod(parseMethod('random:seed=1'), dims(32)), 576, 32);
    const c = await simulate(createMethod(parseMethod('random:seed=2'), dims(32)), 576, 32);
    expect(a.kept.map((k) => k.length)).toEqual([504, 360, 72]);
    expect(b.kept).toEqual(a.kept);
    expect(c.kept[2]).not.toEqual(a.kept[2]);
    expect(a.probes).toEqual([]);
  });

  it('createMethod rejects a schedule the model cannot run before any layer runs', () => {
    expect(() => createMethod(parseMethod('fastv:k=8'), dims(8))).toThrow(/K=8/);
    expect(() => createMethod(parseMethod('transprune@2-9/3,6,9/0.5,0.25,0.125'), dims(8))).toThrow(/needs layer 10/);
    expect(() => createMethod(parseMethod('pdrop:stages=9'), dims(8))).toThrow(/stages/);
  });

  it('none never prunes and never asks for side outputs', async () => {
    const run = await simulate(createMethod(parseMethod('none'), dims(8)), 30, 8);
    expect(run.kept).toEqual([]);
    expect(run.side).toEqual([]);
  });
});

describe('DivPrune', () => {
  /** Four well-separated directions, each with noisy copies: a diverse pick takes one of each. */
  function clustered(perCluster: number, dim: number) {
    const rows: number[][] = [];
    for (let c = 0; c < 4; c++)
      for (let i = 0; i < perCluster; i++) rows.push(Array.from({ length: dim }, (_, k) => (k === c ? 10 : 0) + 0.1 * hash(c, i, k)));
    return Float32Array.from(rows.flat());
  }

  it('picks one token per cluster, ascending', () => {
    const picks = divPrune(clustered(5, 8), 20, 8, 4);
    expect(
      Array.from(picks)
        .map((i) => Math.floor(i / 5))
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    for (let i = 1; i < picks.length; i++) expect(picks[i]).toBeGreaterThan(picks[i - 1]);
  });

  it('first pick is argmax_i min_{j != i} (1 - cos), greedy max-min afterwards (brute force on a small set)', () => {
    const n = 9,
      dim = 3;
    const f = Float32Array.from({ length: n * dim }, (_, i) => hash(7, i) - 0.5);
    const cos = (i: number, j: number) => {
      const a = f.slice(i * dim, i * dim + dim),
        b = f.slice(j * dim, j * dim + dim);
      const d = a.reduce((s, x, k) => s + x * b[k], 0);
      return d / (Math.hypot(...a) * Math.hypot(...b));
    };
    const dist = (i: number, j: number) => 1 - cos(i, j);
    const all = [...Array(n).keys()];
    const picked = [
      all.reduce(
        (best, i) =>
          Math.min(...all.filter((j) => j !== i).map((j) => dist(i, j))) >
          Math.min(...all.filter((j) => j !== best).map((j) => dist(best, j)))
            ? i
            : best,
        0,
      ),
    ];
    while (picked.length < 5) {
      const rest = all.filter((i) => !picked.includes(i));
      picked.push(
        rest.reduce(
          (best, i) => (Math.min(...picked.map((j) => dist(i, j))) > Math.min(...picked.map((j) => dist(best, j))) ? i : best),
          rest[0],
        ),
      );
    }
    expect(Array.from(divPrune(f, n, dim, 5))).toEqual(picked.sort((a, b) => a - b));
  });

  it('runs before the LLM and combines with an in-LLM method whose ratios apply to what it passed on', async () => {
    const spec: MethodSpec = parseMethod('divprune:count=32+transprune-high');
    const method = createMethod(spec, dims(12));
    const kept = method.selectBeforeLLM!(clustered(16, 8), 64, 8);
    expect(kept!.length).toBe(32);
    const run = await simulate(method, 32, 12);
    expect(run.visualPerLayer).toEqual([32, 32, 32, 28, 20, 4, 4, 4, 4, 4, 4, 4]);
  });
});

describe('trace recording', () => {
  it('records per-token TTV, scores and kept sets; validates; round-trips through JSON; exports CSV', async () => {
    const numLayers = 12,
      n = 64;
    const recorder = new TraceRecorder({
      model: { id: 'synthetic', weightsHash: 'sha256:0', numLayers, hidden: 64 },
      provider: 'cpu',
      image: {
        hash: 'sha256:1',
        width: 640,
        height: 480,
        modelWidth: 336,
        modelHeight: 336,
        grid: { rows: 8, cols: 8 },
        layout: singleViewLayout({ x: 80, y: 0, width: 480, height: 480 }, { rows: 8, cols: 8 }),
      },
      prompt: { textTokens: PREFIX + SUFFIX, visualTokens: n, instructionTokens: SUFFIX, visualStart: PREFIX },
      method: parseMethod('transprune-high'),
      flopsModel: { ...FLOPS_PRESETS['llava-1.5-7b'], decoder: { ...FLOPS_PRESETS['llava-1.5-7b'].decoder, numLayers } },
    });
    const run = await simulate(createMethod(parseMethod('transprune-high'), dims(numLayers), recorder), n, numLayers);
    run.visualPerLayer.forEach((v, l) => recorder.layer(l, v, PREFIX + SUFFIX + v, 1));
    const trace = recorder.finish({ answer: 'a red square', generatedTokens: 4 });

    expect(trace.method.schedule).toEqual({ accumulate: [3, 4, 5], prune: [3, 4, 5], ratios: [0.875, 0.625, 0.125] });
    expect(trace.layers.filter((l) => l.kept).map((l) => [l.layer, l.kept!.length])).toEqual([
      [3, 56],
      [4, 40],
      [5, 8],
    ]);
    expect(trace.layers[5 - 1].kept).toEqual(Array.from(run.kept[2]));
    const l4 = trace.layers[3];
    expect(l4.scores!.ttv!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(l4.scores!.attention!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(l4.ttv!.layer.length).toBe(56);
    expect(trace.totals.flops.paper).toBeLessThan(trace.totals.flops.paperUnpruned);
    expect(trace.totals.timesMs.scoring).toBeGreaterThanOrEqual(0);

    expect(readTrace(traceToJson(trace))).toEqual(trace);
    expect(traceToLayerCsv(trace).trim().split('\n')).toHaveLength(1 + numLayers);
    // token rows: layers 3, 4, 5 carry per-token data for 64, 56, 40 tokens
    expect(traceToTokenCsv(trace).trim().split('\n')).toHaveLength(1 + 64 + 56 + 40);
  });
});
