import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { parameterCount, parseLlavaConfig, type LlavaConfig } from '../../src/engine/model/config.js';
import { packFootprints } from '../../src/engine/pack/footprint.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { recommendedDtype, WEIGHT_DTYPES } from '../../src/shared/dtypes.js';

/** An import's footprint, told before anything is written: against the packs the importer really writes. */

const root = mkdtempSync(join(tmpdir(), 'tp-footprint-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const GiB = 1024 ** 3;

let config: LlavaConfig;
const written = new Map<string, number>();

beforeAll(async () => {
  // Wide enough that the int4/int8 linears dominate, as in a real model; an odd width for partial blocks.
  const checkpoint = await makeSyntheticCheckpoint(join(root, 'hf'), { preset: 'tiny', layers: 3, hidden: 200, intermediate: 520 });
  config = parseLlavaConfig(readFileText(join(checkpoint.dir, 'config.json')));
  for (const dtype of WEIGHT_DTYPES) {
    const { dir } = await importCheckpoint(checkpoint.dir, join(root, 'store'), { dtype, name: dtype });
    written.set(
      dtype,
      readdirSync(dir)
        .filter((f) => f.endsWith('.bin'))
        .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0),
    );
  }
}, 120_000);

function readFileText(path: string): string {
  return readFileSync(path, 'utf8');
}

describe('pack footprint', () => {
  it('predicts the weight files of every precision within 2% (64-byte alignment padding aside)', () => {
    for (const { dtype, diskBytes } of packFootprints(config)) {
      const actual = written.get(dtype)!;
      expect(Math.abs(diskBytes - actual) / actual, `${dtype}: estimated ${diskBytes}, written ${actual}`).toBeLessThan(0.02);
    }
    const size = Object.fromEntries(packFootprints(config).map((f) => [f.dtype, f.diskBytes]));
    expect(size.int4).toBeLessThan(size.int8);
    expect(size.int8).toBeLessThan(size.fp16);
    expect(size.fp16).toBeLessThan(size.fp32);
  });

  it('counts fp16 weights as float32 in memory (ONNX Runtime expands them on a CPU), quantized ones packed', () => {
    const memory = Object.fromEntries(packFootprints(config).map((f) => [f.dtype, f.memoryBytes]));
    expect(memory.fp16).toBe(memory.fp32);
    expect(memory.int4).toBeLessThan(memory.int8);
    expect(memory.int8).toBeLessThan(memory.fp16);
  });
});

describe('recommended precision', () => {
  // LLaVA-1.5-7B's own config.json figures (llava-hf/llava-1.5-7b-hf): CLIP ViT-L/14-336, Vicuna-7B.
  const seven = parseLlavaConfig(
    JSON.stringify({
      architectures: ['LlavaForConditionalGeneration'],
      model_type: 'llava',
      image_token_index: 32000,
      projector_hidden_act: 'gelu',
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'default',
      text_config: {
        model_type: 'llama',
        hidden_size: 4096,
        intermediate_size: 11008,
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 32,
        vocab_size: 32064,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 4096,
      },
      vision_config: {
        model_type: 'clip_vision_model',
        hidden_size: 1024,
        intermediate_size: 4096,
        num_hidden_layers: 24,
        num_attention_heads: 16,
        image_size: 336,
        patch_size: 14,
        projection_dim: 768,
      },
    }),
  );

  it('a 7B on a 16 GB laptop: int4; with 32 GB: int8; a small model: fp32', () => {
    const footprints = packFootprints(seven);
    const parameters = parameterCount(seven);
    expect(parameters).toBeGreaterThan(7e9);
    expect(recommendedDtype(footprints, parameters, 16 * GiB)).toBe('int4');
    expect(recommendedDtype(footprints, parameters, 32 * GiB)).toBe('int8');
    expect(recommendedDtype(footprints, parameters, 4 * GiB)).toBe('int4'); // too large even so: the smallest there is
    expect(recommendedDtype(packFootprints(config), parameterCount(config), 8 * GiB)).toBe('fp32');
    // A 7B pack at fp32 is ~28 GB on disk, at int4 under 5 GB.
    const disk = Object.fromEntries(footprints.map((f) => [f.dtype, f.diskBytes / 1e9]));
    expect(disk.fp32).toBeGreaterThan(27);
    expect(disk.int4).toBeLessThan(5);
  });
});
