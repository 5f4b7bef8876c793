import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../../src/cli/command.js';
import { compareCommand, sideBySide } from '../../src/cli/commands/compare.js';
import { methodsFromArgs } from '../../src/cli/pruning-options.js';
import { formatMethod } from '../../src/shared/pruning.js';
import { readTrace } from '../../src/shared/trace-files.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

/** `compare` end to end on the tiny checkpoint (4 layers, 16 visual tokens): table, traces on disk. */

const root = mkdtempSync(join(tmpdir(), 'tps-compare-'));

beforeAll(async () => {
  await makeSyntheticCheckpoint(join(root, 'ckpt'), { preset: 'tiny' });
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 10, g: 120, b: 200 } } })
    .png()
    .toFile(join(root, 'sky.png'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function captured(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...xs: unknown[]) => {
    lines.push(xs.join(' '));
  };
  console.error = () => {};
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return { code: await run(), out: lines.join('\n') };
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, write];
  }
}

describe('cli compare', () => {
  it('answers with each method and prints tokens per stage, FLOPs and prefill ratio; writes one valid trace per method', async () => {
    const args = [
      '--store',
      join(root, 'store'),
      '--model',
      join(root, 'ckpt'),
      '--image',
      join(root, 'sky.png'),
      '--max-tokens',
      '3',
      '--method',
      'none',
      '--method',
      'transprune-high',
      '--trace',
      join(root, 'out.json'),
      'What colour is the sky?',
    ];
    const { code, out } = await captured(() => compareCommand.run(parseCommandArgs(compareCommand, args)));
    expect(code).toBe(0);
    // 4 layers: the high preset scales to prune after 1, 2, 3 keeping floor(16 r).
    expect(out).toMatch(/visual tokens\s+16\s+16→14→10→2/);
    expect(out).toMatch(/prefill vs none\s+1\.00x\s+\d+\.\d\dx/);
    // One shared prefill: the layer before the first prune (after layer 1) ran once for both methods.
    expect(out).toMatch(/shared layers: 1 \(layers 1–1 computed once/);
    expect(out).toMatch(/joint prefill: \d+\.\d ms, vs \d+\.\d ms/);
    const none = readTrace(readFileSync(join(root, 'out.none.json'), 'utf8'));
    const high = readTrace(readFileSync(join(root, 'out.transprune-high.json'), 'utf8'));
    expect(none.layers.some((l) => l.kept)).toBe(false);
    expect(high.layers.filter((l) => l.kept).map((l) => l.kept!.length)).toEqual([14, 10, 2]);
    expect(high.totals.flops.paper / high.totals.flops.paperUnpruned).toBeLessThan(1);
    expect(high.image?.grid).toEqual({ rows: 4, cols: 4 });
  });

  it('--schedule goes to transprune and random methods, --alpha to transprune ones, others stay as given', () => {
    const specs = methodsFromArgs(
      parseCommandArgs(compareCommand, [
        '--method',
        'none',
        '--method',
        'ttv',
        '--method',
        'random:seed=2',
        '--method',
        'fastv',
        '--schedule',
        '2-4/2,4/0.5,0.25',
        '--alpha',
        '0.7',
        'q',
      ]),
    );
    expect(specs.map(formatMethod)).toEqual([
      'none',
      'transprune@2-4/2,4/0.5,0.25:alpha=0.7',
      'random@2-4/2,4/0.5,0.25:seed=2',
      'fastv:k=2,r=0.5',
    ]);
    expect(() => methodsFromArgs(parseCommandArgs(compareCommand, ['--method', 'ttv', '--alpha', '2', 'q']))).toThrow(/alpha/);
    expect(() => methodsFromArgs(parseCommandArgs(compareCommand, ['--method', 'ttv', '--schedule', '7-12/7', 'q']))).toThrow(/schedule/);
  });

  it('lays answers out in wrapped columns', () => {
    expect(sideBySide(['a', 'b'], ['one two three', 'four'], 8)).toBe('a         b\n---       ---\none two   four\nthree');
  });
});
