// The Qwen2.5-VL fixtures of tools/demo-model/make_qwen_fixtures.py (tests/fixtures/reference-qwen): transformers'
// outputs for two tiny checkpoints whose files are committed and whose weights are rebuilt from the recipe
// (writeNextCheckpoint: the same seeded streams as the LLaVA-NeXT fixtures).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ReferenceStage } from './kept-parity.js';
import type { NextFixture } from './next-fixture.js';

export const QWEN_FIXTURES = resolve(import.meta.dirname, '../fixtures/reference-qwen');

interface Summary {
  shape: number[];
  mean: number;
  std: number;
  abs_max: number;
  rows: Record<string, number[]>;
}

export interface QwenCase {
  image: string;
  question: string;
  prompt: string;
  image_size: [number, number];
  /** Prompt ids with <|image_pad|> once (transformers expands it to num_visual copies). */
  prompt_ids: number[];
  visual_start: number;
  num_visual: number;
  image_grid_thw: [number, number, number];
  pixel_values: { shape: [number, number]; row_sums: number[]; samples: { flat_index: number[]; value: number[] } };
  visual_tokens: Summary;
  /** [3][S]: temporal, height and width position of every token of the expanded prompt. */
  position_ids: number[][];
  rope_delta: number;
  layer_outputs: Summary[];
  prefill_logits_last: number[];
  greedy: { ids: number[]; text: string };
  transprune_high: {
    schedule: { accumulate: number[]; prune: number[]; ratios: number[] };
    runs: {
      positions: 'original' | 'compact';
      answer_token: number;
      stages: ReferenceStage[];
    }[];
  };
}

export interface QwenFixture extends Pick<NextFixture, 'model' | 'files' | 'weights'> {
  transformers: string;
  image_processor: string;
  spec: { tied: boolean; mrope: [number, number, number]; theta: number; window: number; full: number[] };
  cases: Record<string, QwenCase>;
}

export function readQwenFixture(name: 'untied' | 'tied'): QwenFixture {
  return JSON.parse(readFileSync(join(QWEN_FIXTURES, `${name}.json`), 'utf8')) as QwenFixture;
}
