// `npm run cli -- import` as a user runs it: a real process, its output and exit code.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

const root = mkdtempSync(join(tmpdir(), 'import-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], {
      env: { ...process.env, TRANSPRUNE_HOME: join(root, 'home') },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('import command', () => {
  const checkpoint = join(root, 'llava-tiny');
  beforeAll(() => makeSyntheticCheckpoint(checkpoint, { preset: 'tiny' }));

  it('imports into $TRANSPRUNE_HOME/models with progress, then reports "already imported"', async () => {
    const first = await cli('import', checkpoint, '--name', 'tiny', '--dtype', 'fp16');
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/100%\s+finalize imported "tiny"/);
    expect(first.stdout).toMatch(/^imported: "tiny" \(id [0-9a-f]{16}, fp16\)/);
    expect(first.stdout).toContain('16 visual tokens');
    // ONNX Runtime loads fp16 weights as float32: the import says so and what to use on a CPU instead.
    expect(first.stdout).toMatch(/note: fp16 weights are [\d.]+ GB on disk but ONNX Runtime expands them to float32.*--dtype int8 or int4/);
    expect(readdirSync(join(root, 'home', 'models'))).toHaveLength(1);

    const second = await cli('import', checkpoint, '--dtype', 'fp16');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^already imported: "tiny"/);
  });

  it('bad input: a clear one-line error and exit code 1, no stack trace, nothing stored', async () => {
    writeFileSync(join(root, 'config.json'), '{"model_type": "llava", "text_config": {"hidden_act": "relu"}}');
    const bad = await cli('import', root, '--store', join(root, 'store-bad'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error: .*config.json: unsupported text_config.hidden_act 'relu'; supported: /);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(root)).not.toContain('store-bad');
  });
});
