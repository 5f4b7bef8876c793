// The LLaVA-NeXT fixtures of tools/demo-model/make_next_fixtures.py (tests/fixtures/reference-next):
// transformers' outputs for two tiny checkpoints whose files are committed and whose weights are
// rebuilt here from the recipe (a seeded mulberry32 stream per tensor, the same integers as the
// script's), each tensor checked against the sha256 the script recorded before anything is compared.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeSafetensors } from '../../src/engine/io/safetensors.js';
import type { ReferenceStage } from './kept-parity.js';

export const NEXT_FIXTURES = resolve(import.meta.dirname, '../fixtures/reference-next');

interface Summary {
  shape: number[];
  mean: number;
  std: number;
  abs_max: number;
  rows: Record<string, number[]>;
}

export interface NextCase {
  image: string;
  question: string;
  prompt: string;
  image_size: [number, number];
  /** Prompt ids with the <image> placeholder once (transformers expands it to num_visual copies). */
  prompt_ids: number[];
  visual_start: number;
  num_visual: number;
  pixel_values: {
    shape: number[];
    mean_per_view_channel: number[][];
    std_per_view_channel: number[][];
    samples: { flat_index: number[]; value: number[] };
  };
  visual_tokens: Summary & { newline_rows: number[] };
  layer_outputs: Summary[];
  prefill_logits_last: number[];
  greedy: { ids: number[]; text: string };
  transprune_high: {
    schedule: { accumulate: number[]; prune: number[]; ratios: number[] };
    answer_token: number;
    stages: ReferenceStage[];
  };
}

export interface NextFixture {
  model: string;
  transformers: string;
  image_processor: string;
  files: Record<string, string>;
  weights: { name: string; shape: number[]; mean: number; std: number; seed: number; sha256: string }[];
  cases: Record<string, NextCase>;
}

export function readNextFixture(name: 'vicuna' | 'mistral'): NextFixture {
  return JSON.parse(readFileSync(join(NEXT_FIXTURES, `${name}.json`), 'utf8')) as NextFixture;
}

/** The script's mulberry32, uniform with the given mean and std: mean + std * sqrt(3) * (2u - 1). */
function uniformTensor(count: number, mean: number, std: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = mean + std * Math.sqrt(3) * (2 * u - 1);
  }
  return out;
}

/** Writes the fixture's checkpoint folder (its files, model.safetensors from the recipe) into `dir`. */
export async function writeNextCheckpoint(fixture: Pick<NextFixture, 'model' | 'files' | 'weights'>, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(fixture.files)) writeFileSync(join(dir, file), text);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const w of fixture.weights) {
    const data = uniformTensor(
      w.shape.reduce((a, b) => a * b, 1),
      w.mean,
      w.std,
      w.seed,
    );
    const digest = createHash('sha256').update(new Uint8Array(data.buffer)).digest('hex');
    if (digest !== w.sha256) throw new Error(`${fixture.model}: ${w.name} rebuilt with other values than the fixture's weights`);
    tensors[w.name] = { dtype: 'F32', shape: w.shape, data };
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}
