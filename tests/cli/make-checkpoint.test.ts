// `npm run cli -- make-checkpoint` as a user runs it (a real process), then the checkpoint it wrote imported by `import`.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../helpers/safetensors.js';

const root = mkdtempSync(join(tmpdir(), 'make-checkpoint-cli-'));
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

describe('make-checkpoint command', () => {
  it('--help lists the shape options', async () => {
    const help = await cli('make-checkpoint', '--help');
    expect(help.code).toBe(0);
    for (const flag of ['--out', '--layers', '--hidden', '--kv-heads', '--dtype']) expect(help.stdout).toContain(flag);
  });

  it('writes the requested shape, and `import` turns it into a pack with that many layers', async () => {
    const out = join(root, 'llava-3x96');
    const made = await cli('make-checkpoint', '--out', out, '--layers', '3', '--hidden', '96', '--heads', '6', '--kv-heads', '2');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain(`checkpoint written to ${out}`);

    // The files as Hugging Face writes them, read without the engine.
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('llava');
    expect(config.text_config).toMatchObject({ num_hidden_layers: 3, hidden_size: 96, num_attention_heads: 6, num_key_value_heads: 2 });
    const weights = readSafetensorsFile(join(out, 'model.safetensors'));
    expect(weights.get('language_model.model.layers.2.self_attn.k_proj.weight')?.shape).toEqual([2 * 16, 96]);
    expect(weights.has('language_model.model.layers.3.self_attn.k_proj.weight')).toBe(false);

    const imported = await cli('import', out, '--name', 'made');
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/^imported: "made"/);
    const [pack] = readdirSync(join(root, 'home', 'models'));
    const manifest = JSON.parse(readFileSync(join(root, 'home', 'models', pack, 'manifest.json'), 'utf8'));
    expect(manifest.config.text).toMatchObject({ numLayers: 3, hiddenSize: 96 });
    expect(manifest.graphs.layers).toHaveLength(3);
  });

  it('a shape no model can have: a one-line error, exit code 1, no stack trace', async () => {
    const bad = await cli('make-checkpoint', '--out', join(root, 'bad'), '--hidden', '100', '--heads', '3');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: hidden must be a multiple of heads/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('--out is required', async () => {
    const missing = await cli('make-checkpoint', '--layers', '2');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('--out DIR is required');
  });
});
