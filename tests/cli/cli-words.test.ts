import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, truncateSync, statSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The command line as a user meets it, run as a real process (`npm run cli` is `tsx src/cli/index.ts`):
 * the app's defaults (text-only questions, TransPrune High), one way to list methods, and errors in
 * words, each on a line of its own.
 */

const root = mkdtempSync(join(tmpdir(), 'tp-cli-words-'));
const store = join(root, 'models');
let checkpoint: string;
let image: string;

beforeAll(async () => {
  checkpoint = (await makeSyntheticCheckpoint(join(root, 'hf-tiny'), { preset: 'tiny', layers: 4 })).dir;
  await importCheckpoint(checkpoint, store, { name: 'tiny' });
  image = join(root, 'red.png');
  await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c33' } }).toFile(image);
}, 120_000);

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'index.ts'), ...args], { encoding: 'utf8', cwd: ROOT });
}

describe('ask, as the app asks', () => {
  it("answers a text-only question with the app's default method, TransPrune High", () => {
    const trace = join(root, 'text-only.json');
    const run = cli('ask', '--model', 'tiny', '--store', store, '--max-tokens', '3', '--trace', trace, 'Say something.');
    expect(run.status, run.stderr).toBe(0);
    const written = JSON.parse(readFileSync(trace, 'utf8'));
    expect(written.method.label).toBe('transprune-high');
    expect(written.image).toBeNull();
    expect(run.stderr).toMatch(/^compute {8}0 FLOPs \(100%\) by the paper's count, /m);
  });

  it('prints compute the one way the app does, never MACs', () => {
    const run = cli('ask', '--model', 'tiny', '--store', store, '--image', image, '--max-tokens', '2', 'What colour?');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /^compute {8}\d+(\.\d+)? [kMGT]?FLOPs \(\d+(\.\d)?%\) by the paper's count, \d+(\.\d+)? [kMGT]?FLOPs \(\d+(\.\d)?%\) in full$/m,
    );
    expect(run.stderr).not.toMatch(/MACs/);
  });
});

describe('eval', () => {
  it('--methods a,b evaluates each method once, under its own name', () => {
    const data = join(root, 'two.jsonl');
    writeFileSync(data, `${JSON.stringify({ id: 'q1', image, question: 'What colour?', answer: 'red', family: 'colour' })}\n`);
    const out = join(root, 'eval-out');
    const run = cli(
      'eval',
      '--model',
      'tiny',
      '--store',
      store,
      '--data',
      data,
      '--methods',
      'none,fastv:k=2,r=0.5',
      '--max-tokens',
      '2',
      '--out',
      out,
    );
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    expect(report.methods.map((m: { method: string }) => m.method)).toEqual(['none', 'fastv:k=2,r=0.5']);
    expect(report.predictions).toHaveLength(2);
  });
});

describe('compare takes methods the way eval does', () => {
  it('--methods a,b (commas inside a method kept) runs the same comparison as --method a --method b', () => {
    const listed = cli(
      'compare',
      '--model',
      'tiny',
      '--store',
      store,
      '--image',
      image,
      '--max-tokens',
      '2',
      '--methods',
      'none,fastv:k=2,r=0.5',
      'What colour?',
    );
    const repeated = cli(
      'compare',
      '--model',
      'tiny',
      '--store',
      store,
      '--image',
      image,
      '--max-tokens',
      '2',
      '--method',
      'none',
      '--method',
      'fastv:k=2,r=0.5',
      'What colour?',
    );
    for (const run of [listed, repeated]) {
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain('running none, fastv:k=2,r=0.5 (one shared prefill)');
      expect(run.stdout).toMatch(/compute \(paper's count\)/);
    }
    const answers = (run: typeof listed) => run.stdout.split('\n').slice(0, 6).join('\n');
    expect(answers(listed)).toBe(answers(repeated));
  });
});

describe('errors in words', () => {
  it('a mistyped option names the one meant', () => {
    const run = cli('ask', '--imgae', image, 'What colour?');
    expect(run.status).toBe(1);
    expect(run.stderr.split('\n')[0]).toBe('error: unknown option --imgae; did you mean --image?');
  });

  it('an image file that is not there is named, not a raw ENOENT', () => {
    const missing = join(root, 'no-such.png');
    const run = cli('ask', '--model', 'tiny', '--store', store, '--image', missing, 'What colour?');
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(`error: --image ${missing}: no such file`);
  });

  it('an error that cuts a progress line short starts on a line of its own', () => {
    const broken = join(root, 'hf-broken');
    cpSync(checkpoint, broken, { recursive: true });
    const weights = join(broken, 'model.safetensors');
    truncateSync(weights, statSync(weights).size - 10);
    const run = cli('ask', '--model', broken, '--store', join(root, 'other-store'), 'Hi?');
    expect(run.status).toBe(1);
    const lines = run.stderr.split('\n');
    const error = lines.findIndex((l) => l.startsWith('error: '));
    expect(error, run.stderr).toBeGreaterThan(0);
    expect(lines[error - 1]).toMatch(/importing \d+%/);
    expect(lines[error]).toMatch(/^error: .*model\.safetensors: file is truncated/);
  });
});
