import { describe, expect, it } from 'vitest';
import {
  formatMethod,
  keepCount,
  MethodSpec,
  parseMethod,
  parseSchedule,
  planStages,
  positionPolicy,
  PRESET_SCHEDULES,
  resolveSchedule,
  scaleSchedule,
  visualCountsPerLayer,
  withOverrides,
} from '../../src/shared/pruning.js';

function transpruneOf(spec: MethodSpec) {
  if (spec.llm.kind !== 'transprune') throw new Error('expected a transprune spec');
  return spec.llm;
}

describe('parseMethod', () => {
  it('parses presets, baselines and combinations', () => {
    const high = parseMethod('transprune-high').llm;
    expect(high).toMatchObject({ kind: 'transprune', preset: 'transprune-high', alpha: 0.5, direction: 'code' });
    // Positions are the model's default unless given: compact (the released code), FastV's and M-RoPE models' original.
    expect(high).not.toHaveProperty('positions');
    expect(positionPolicy(high)).toBe('compact');
    expect(positionPolicy(high, { mrope: true })).toBe('original');
    expect(positionPolicy(parseMethod('transprune-high:positions=compact').llm, { mrope: true })).toBe('compact');
    expect(parseMethod('ttv').llm).toMatchObject({ kind: 'transprune', alpha: 1 });
    expect(parseMethod('iga').llm).toMatchObject({ kind: 'transprune', alpha: 0 });
    expect(parseMethod('fastv:k=3,r=0.75').llm).toEqual({ kind: 'fastv', k: 3, r: 0.75 });
    expect(positionPolicy(parseMethod('fastv:k=3,r=0.75').llm)).toBe('original');
    expect(parseMethod('pdrop').llm).toMatchObject({ kind: 'pdrop', stages: 4, lambda: 0.5 });
    expect(parseMethod('random:seed=7').llm).toMatchObject({ kind: 'random', seed: 7, schedule: PRESET_SCHEDULES['transprune-high'] });
    const combo = parseMethod('divprune:ratio=0.5+transprune-high');
    expect(combo.projector).toEqual({ kind: 'divprune', ratio: 0.5 });
    // The brief's spelling: bare divprune keeps half (Tables 4-5's 288 of 576), bare transprune is High.
    expect(parseMethod('divprune+transprune')).toEqual(combo);
    expect(combo.llm.kind).toBe('transprune');
    expect(parseMethod('transprune-low:alpha=0.4,direction=paper').llm).toMatchObject({
      preset: 'transprune-low',
      alpha: 0.4,
      direction: 'paper',
    });
  });

  it('rejects malformed strings with a clear message', () => {
    expect(() => parseMethod('fastv:k=1')).toThrow();
    expect(() => parseMethod('bogus')).toThrow(/unknown method/);
    expect(() => parseMethod('fastv:q=2')).toThrow(/unknown option/);
    expect(() => parseMethod('transprune+fastv')).toThrow(/projector-side/);
    expect(() => parseMethod('divprune:count=10,ratio=0.5')).toThrow();
    expect(() => parseSchedule('7-12/7,9/0.5')).toThrow(/same length/);
    expect(() => parseSchedule('7-12/9,7/0.5,0.25')).toThrow(/increasing/);
  });

  it('round-trips through formatMethod', () => {
    for (const m of [
      'none',
      'transprune-high',
      'transprune-low:alpha=0.4',
      'fastv:k=2,r=0.5',
      'pdrop:stages=3,lambda=0.6',
      'random:seed=3',
      'divprune:count=144+ttv',
      'iga:positions=original',
      'divprune:ratio=0.25',
      'transprune@5-10/5,7,10/0.875,0.625,0.125:alpha=0.4',
      'random@2-3/2,3/0.5,0.25:seed=4',
    ]) {
      const spec = parseMethod(m);
      expect(parseMethod(formatMethod(spec))).toEqual(spec);
      expect(MethodSpec.parse(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
    }
  });

  it('writes TTV-only and IGA-only as ttv and iga', () => {
    expect(formatMethod(parseMethod('ttv'))).toBe('ttv');
    expect(formatMethod(parseMethod('transprune-high:alpha=0'))).toBe('iga');
    expect(formatMethod(parseMethod('transprune-low:alpha=1'))).toBe('transprune-low:alpha=1');
  });

  it('--schedule and --alpha replace the preset', () => {
    const s = withOverrides(parseMethod('transprune-high'), { schedule: parseSchedule('5-10/5,7,10/0.875,0.625,0.125'), alpha: 0.6 });
    expect(s.llm).toMatchObject({ alpha: 0.6, preset: undefined, schedule: { accumulate: [5, 6, 7, 8, 9, 10], prune: [5, 7, 10] } });
    expect(() => withOverrides(parseMethod('fastv'), { alpha: 0.2 })).toThrow();
  });
});

describe('schedules', () => {
  it('keep counts are floor(N * r) of the original N (576 -> 504 -> 360 -> 72)', () => {
    expect(planStages(parseMethod('transprune-high').llm, 32, 576)).toEqual([
      { afterLayer: 7, keep: 504 },
      { afterLayer: 9, keep: 360 },
      { afterLayer: 12, keep: 72 },
    ]);
    expect(planStages(parseMethod('transprune-low').llm, 32, 576).map((s) => s.keep)).toEqual([360, 108, 36]);
    expect(keepCount(100, 0.29)).toBe(28); // 100 * 0.29 = 28.999999999999996 in float64, as Python int()
    expect(keepCount(10, 0.01)).toBe(1);
  });

  it('per-layer visual counts are [576]x7, [504]x2, [360]x3, [72]x20 (§8.3)', () => {
    const counts = visualCountsPerLayer(planStages(parseMethod('transprune-high').llm, 32, 576), 32, 576);
    expect(counts).toEqual([...Array(7).fill(576), 504, 504, 360, 360, 360, ...Array(20).fill(72)]);
  });

  it('PDrop splits into equal stages; FastV prunes once after K', () => {
    expect(planStages(parseMethod('pdrop').llm, 32, 576)).toEqual([
      { afterLayer: 8, keep: 288 },
      { afterLayer: 16, keep: 144 },
      { afterLayer: 24, keep: 72 },
    ]);
    expect(planStages(parseMethod('fastv:k=2,r=0.75').llm, 32, 576)).toEqual([{ afterLayer: 2, keep: 144 }]);
  });

  it('scales presets by depth: prune layers distinct, increasing, inside the accumulation window, <= L-1', () => {
    const high = PRESET_SCHEDULES['transprune-high'];
    expect(scaleSchedule(high, 32)).toEqual({ accumulate: [7, 8, 9, 10, 11, 12], prune: [7, 9, 12], ratios: high.ratios });
    expect(scaleSchedule(high, 12)).toMatchObject({ accumulate: [3, 4, 5], prune: [3, 4, 5] });
    expect(scaleSchedule(high, 16)).toMatchObject({ accumulate: [4, 5, 6], prune: [4, 5, 6] });
    expect(scaleSchedule(high, 24)).toMatchObject({ accumulate: [5, 6, 7, 8, 9], prune: [5, 7, 9] });
    expect(scaleSchedule(high, 64)).toMatchObject({ accumulate: Array.from({ length: 11 }, (_, i) => 14 + i), prune: [14, 18, 24] });
    for (let L = 4; L <= 80; L++) {
      const s = scaleSchedule(high, L);
      expect(s.prune.length).toBe(3);
      s.prune.forEach((p, i) => {
        if (i) expect(p).toBeGreaterThan(s.prune[i - 1]);
        expect(s.accumulate).toContain(p);
      });
      expect(s.prune[2]).toBeLessThanOrEqual(L - 1);
      expect(s.prune[0]).toBeGreaterThanOrEqual(1);
    }
    expect(() => scaleSchedule(high, 3)).toThrow();
  });

  it('manifest overrides replace a preset; a request schedule beats both', () => {
    const own = parseSchedule('2-4/2,3,4/0.75,0.5,0.25');
    const overrides = { presets: { 'transprune-high': own } };
    const llm = transpruneOf(parseMethod('transprune-high'));
    expect(resolveSchedule(llm, 12, overrides)).toEqual(own);
    const request = transpruneOf(withOverrides(parseMethod('transprune-high'), { schedule: parseSchedule('5-6/5,6/0.5,0.25') }));
    expect(resolveSchedule(request, 12, overrides).prune).toEqual([5, 6]);
    expect(() => resolveSchedule(request, 6, overrides)).toThrow(/needs layer 7/);
  });
});
