import { describe, expect, it } from 'vitest';
import { parseMethod, parseSchedule, withOverrides, type MethodSpec } from '../../src/shared/pruning.js';
import { FLOPS_PRESETS, fullFlops, paperFlops, planPrefill, tera } from '../../src/engine/pruning/flops.js';

const prompt = { textTokens: 64, instructionTokens: 20 };
const paper = (spec: MethodSpec, preset = 'llava-1.5-7b') => {
  const model = FLOPS_PRESETS[preset];
  return paperFlops(planPrefill(spec, model, prompt).visualPerLayer, model.decoder.hidden, model.decoder.intermediate);
};
const method = (m: string) => parseMethod(m);
const table9 = (p: number[]) =>
  withOverrides(method('transprune-high'), { schedule: parseSchedule(`${p[0]}-${p[2]}/${p.join(',')}/0.875,0.625,0.125`) });

// The paper's reported TFLOPs (method spec §6.1-§6.3, Tables 1, 2, 9).
describe('paper-convention FLOPs reproduce the paper', () => {
  it.each([
    ['none', 'llava-1.5-7b', '3.82'],
    ['transprune-high', 'llava-1.5-7b', '1.56'],
    ['transprune-low', 'llava-1.5-7b', '1.19'],
    ['fastv:k=2,r=0.5', 'llava-1.5-7b', '2.01'],
    ['fastv:k=2,r=0.75', 'llava-1.5-7b', '1.12'],
    ['pdrop', 'llava-1.5-7b', '1.78'],
    ['divprune:count=288', 'llava-1.5-7b', '1.89'], // VisionZip-288 budget row
    ['divprune:count=192', 'llava-1.5-7b', '1.25'],
    ['none', 'llava-next-7b', '20.83'],
    ['transprune-high', 'llava-next-7b', '8.33'],
    ['transprune-low', 'llava-next-7b', '6.41'],
  ])('%s on %s = %s TFLOPs', (m, preset, expected) => {
    expect(tera(paper(method(m), preset))).toBe(expected);
  });

  it.each([
    [[5, 7, 10], '1.35'],
    [[6, 8, 11], '1.45'],
    [[7, 9, 12], '1.56'],
    [[8, 10, 13], '1.66'],
    [[9, 11, 14], '1.77'],
  ])('Table 9 layer group %j = %s', (layers, expected) => {
    expect(tera(paper(table9(layers)))).toBe(expected);
  });

  it('percentages of the baseline match Table 1/2 (40.8%, 40.0%)', () => {
    expect((100 * paper(method('transprune-high'))) / paper(method('none'))).toBeCloseTo(40.8, 1);
    expect((100 * paper(method('transprune-high'), 'llava-next-7b')) / paper(method('none'), 'llava-next-7b')).toBeCloseTo(40.0, 1);
  });
});

describe('full FLOPs', () => {
  const model = FLOPS_PRESETS['llava-1.5-7b'];
  const full = (m: string) => fullFlops(planPrefill(method(m), model, prompt), model);

  it('counts one unpruned decoder layer as 2 x (4Sd² + 2S²d + 3Sdm) for MHA', () => {
    const S = 64 + 576,
      d = 4096,
      m = 11008;
    expect(full('none').decoder).toBe(32 * 2 * (4 * S * d * d + 2 * S * S * d + 3 * S * d * m));
  });

  it('adds the vision tower (~0.35 TFLOPs of MACs for CLIP-L/336) and the projector', () => {
    const f = full('none');
    // Independent estimate: 23 layers x 577 tokens x 12·1024² params-ish MACs ≈ 0.167e12 MACs + attention.
    expect(f.vision / 2).toBeGreaterThan(0.16e12);
    expect(f.vision / 2).toBeLessThan(0.2e12);
    expect(f.projector).toBe(2 * 576 * (1024 * 4096 + 4096 * 4096));
  });

  it('charges TransPrune its TTV and IGA overheads, unpruned runs none', () => {
    expect(full('none').overhead).toBe(0);
    const tp = full('transprune-high');
    expect(tp.overhead).toBeGreaterThan(0);
    // three probes: k for the tokens the next layer drops (it reuses the kept ones' rows), q and logits for 20
    // query rows: 2 x ((640 - 568)·4096² + 20·4096² + 20·640·4096) and so on
    const probe = (s: number, next: number) => 2 * ((s - next) * 4096 * 4096 + 20 * (4096 * 4096 + s * 4096));
    const ttv = (s: number) => 2 * 6 * s * 4096;
    const seqs = [640, 568, 424]; // 64 text + 576, 504, 360 visual at layers 7, 9, 12
    const next = [568, 424, 136]; // what layers 8, 10 and 13 take: 504, 360 and 72 visual
    const ttvSeqs = [640, 568, 568, 424, 424, 424]; // layers 7..12
    expect(tp.overhead).toBe(seqs.reduce((a, s, i) => a + probe(s, next[i]), 0) + ttvSeqs.reduce((a, s) => a + ttv(s), 0));
    expect(tp.total).toBeLessThan(full('none').total);
    expect(full('ttv').overhead).toBeLessThan(1e9); // TTV alone is dot products only
  });
});

describe('cli flops', () => {
  it('prints the paper-convention TFLOPs per method', async () => {
    const { flopsCommand } = await import('../../src/cli/commands/flops.js');
    const { parseCommandArgs } = await import('../../src/cli/command.js');
    const lines: string[] = [];
    const log = console.log;
    console.log = (...xs: unknown[]) => {
      lines.push(xs.join(' '));
    };
    try {
      const code = await flopsCommand.run(
        parseCommandArgs(flopsCommand, [
          '--preset',
          'llava-1.5-7b',
          '--method',
          'none',
          '--method',
          'transprune-high',
          '--method',
          'fastv:k=2,r=0.75',
        ]),
      );
      expect(code).toBe(0);
    } finally {
      console.log = log;
    }
    const row = (name: string) => lines.find((l) => l.startsWith(name))!.split(/\s+/);
    expect(row('none')[2]).toBe('3.82');
    expect(row('transprune-high')[2]).toBe('1.56');
    expect(row('fastv:k=2,r=0.75')[2]).toBe('1.12');
  });
});
