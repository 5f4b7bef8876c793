// `npm run cli -- make-checkpoint` as a user runs it (a real process), then the checkpoint it wrote imported by `import`.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../helpers/safetensors.js';

function readSafetensorsHeaderJson(path: string): Record<string, { dtype: string }> {
  const bytes = readFileSync(path);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  delete header.__metadata__;
  return header;
}

/** The pack id `import` prints on its first line. */
function packIdOf(stdout: string): string {
  const id = /\b([0-9a-f]{16})\b/.exec(stdout)?.[1];
  if (!id) throw new Error(`no pack id in: ${stdout}`);
  return id;
}

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
    for (const preset of ['llava-1.5-7b', 'llava-1.5-13b', 'bench']) expect(help.stdout).toContain(preset);
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

  it('a bf16 checkpoint in shards, from a preset, imports as that preset', async () => {
    const out = join(root, 'gqa-bf16');
    const made = await cli('make-checkpoint', '--out', out, '--preset', 'tiny-gqa', '--dtype', 'bf16', '--shards', '2');
    expect(made.code).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map))).toEqual(
      new Set(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']),
    );
    const header = readSafetensorsHeaderJson(join(out, 'model-00002-of-00002.safetensors'));
    expect(Object.values(header).every((t) => t.dtype === 'BF16')).toBe(true);

    const imported = await cli('import', out, '--name', 'gqa-bf16', '--dtype', 'int8');
    expect(imported.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(root, 'home', 'models', packIdOf(imported.stdout), 'manifest.json'), 'utf8'));
    expect(manifest.config.text).toMatchObject({ numLayers: 6, hiddenSize: 96, numHeads: 6, numKvHeads: 2 });
  });

  it('writes a checkpoint a chunk at a time: peak memory grows by less than its largest tensor in float32', async () => {
    // 63 M weights: 252 MB in float32 (what holding the tensors would take), the embedding alone 98 MB of it.
    const out = join(root, 'mid-size');
    const shape = { hidden: 768, intermediate: 2048, layers: 2, heads: 6, kvHeads: 6, vocabSize: 32064, dtype: 'fp16' };
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      'tests/helpers/checkpoint-memory-child.ts',
      out,
      JSON.stringify(shape),
    ]);
    const { before, after } = JSON.parse(stdout) as { before: number; after: number };
    const embedF32 = 32064 * 768 * 4;
    expect(after - before).toBeLessThan(embedF32);
    const weights = readSafetensorsFile(join(out, 'model.safetensors'));
    expect(weights.get('language_model.model.embed_tokens.weight')?.shape).toEqual([32064, 768]);
    expect(weights.get('language_model.model.layers.1.mlp.down_proj.weight')?.shape).toEqual([768, 2048]);
  }, 180_000);

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
