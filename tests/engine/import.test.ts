// importCheckpoint on real (tiny) Hugging Face folders: the pack's graphs against the independent
// float64 reference, idempotence, atomicity under cancellation, and bad input failing before any
// graph is built.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint, type ImportProgress } from '../../src/engine/pack/import.js';
import { loadManifest } from '../../src/engine/pack/manifest.js';
import { readPack } from '../../src/engine/pack/read.js';
import { findPack, listPacks, removePack } from '../../src/engine/pack/store.js';
import { loadReferenceModel, referenceDecoderLayer, referenceHead, referenceVision } from '../helpers/reference.js';
import { makeSyntheticCheckpoint, type SyntheticCheckpointOptions } from '../../src/engine/checkpoint/synthetic.js';
import { SYNTHETIC_CHAT_TEMPLATE } from '../../src/engine/checkpoint/synthetic-tokenizer.js';
import { relativeError } from '../helpers/diff.js';

const root = mkdtempSync(join(tmpdir(), 'import-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const run = async (dir: string, graph: string, feeds: Record<string, ort.Tensor>) => {
  const session = await ort.InferenceSession.create(join(dir, graph), { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
};

describe('a sharded bf16 checkpoint in the transformers >= 4.52 layout, GQA', () => {
  const checkpoint = join(root, 'gqa-bf16');
  const store = join(root, 'store-a');
  let packDir: string;

  beforeAll(async () => {
    await makeSyntheticCheckpoint(checkpoint, { preset: 'tiny-gqa', dtype: 'bf16', shards: 3, layout: 'new', chatTemplate: true });
    packDir = (await importCheckpoint(checkpoint, store, { name: 'gqa' })).dir;
  });

  it('writes a pack whose manifest validates and describes the model', async () => {
    const info = await readPack(packDir);
    const m = info.manifest;
    expect(m).toMatchObject({ formatVersion: 3, name: 'gqa', dtype: 'fp32', numVisualTokens: 36, patchGrid: { rows: 6, cols: 6 } });
    expect(m.source.layout).toBe('unified');
    expect(m.config.text).toMatchObject({ hiddenSize: 96, numLayers: 6, numHeads: 6, numKvHeads: 2, headDim: 16 });
    expect(m.graphs.layers).toEqual(['layer_00.onnx', 'layer_01.onnx', 'layer_02.onnx', 'layer_03.onnx', 'layer_04.onnx', 'layer_05.onnx']);
    expect(m.chatTemplate).toBe(SYNTHETIC_CHAT_TEMPLATE);
    expect(info.clip).toMatchObject({ resize: { shortestEdge: 42 }, crop: { height: 42, width: 42 } });
    expect(readdirSync(packDir).filter((f) => f.startsWith('probe_') && f.endsWith('.bin'))).toEqual([]); // probes share layer files
    expect(readFileSync(join(packDir, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(checkpoint, 'tokenizer.json'), 'utf8'));
  });

  it('vision, a decoder layer and the head match the float64 reference within 1e-4', async () => {
    const ref = loadReferenceModel(checkpoint);
    const size = ref.vision.imageSize;
    const pixels = Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.37) * 1.5);
    const vision = await run(packDir, 'vision.onnx', { pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]) });
    const expected = referenceVision(ref, pixels);
    expect(relativeError(vision.image_features.data as Float32Array, expected.imageFeatures.data)).toBeLessThan(1e-4);
    expect(relativeError(vision.vision_features.data as Float32Array, expected.visionFeatures.data)).toBeLessThan(1e-4);

    const x = expected.imageFeatures; // 36 realistic hidden rows
    const S = x.rows;
    const positions = Array.from({ length: S }, (_, i) => i + 2);
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
    const layer = await run(packDir, 'layer_03.onnx', {
      hidden: new ort.Tensor('float32', Float32Array.from(x.data), [1, S, 96]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [1, S]),
      past_key: empty,
      past_value: empty,
      past_length: new ort.Tensor('int64', BigInt64Array.from([0n]), []),
      known_key_proj: new ort.Tensor('float32', new Float32Array(0), [1, 0, 2 * 16]),
    });
    const refLayer = referenceDecoderLayer(ref, 3, x, positions, null);
    expect(relativeError(layer.hidden_out.data as Float32Array, refLayer.out.data)).toBeLessThan(1e-4);
    expect(relativeError(layer.attn_cos.data as Float32Array, refLayer.side.attnCos)).toBeLessThan(1e-4);

    const head = await run(packDir, 'head.onnx', { hidden: layer.hidden_out });
    expect(relativeError(head.logits.data as Float32Array, referenceHead(ref, refLayer.out).data)).toBeLessThan(1e-4);
  });

  it('a second import of the same folder and options is a no-op reporting "already imported"', async () => {
    const before = statSync(join(packDir, 'manifest.json')).mtimeMs;
    const stages: string[] = [];
    const again = await importCheckpoint(checkpoint, store, { name: 'other name', onProgress: (p) => stages.push(p.stage) });
    expect(again).toMatchObject({ dir: packDir, alreadyImported: true });
    expect(stages).not.toContain('layers');
    expect(statSync(join(packDir, 'manifest.json')).mtimeMs).toBe(before);
    expect(readdirSync(store)).toHaveLength(1);
  });

  it('other pruning overrides make another pack, not a silent no-op', async () => {
    const pruning = { presets: { 'transprune-high': { accumulate: [2, 3], prune: [2, 3], ratios: [0.5, 0.25] } } };
    const overridden = await importCheckpoint(checkpoint, store, { name: 'gqa-overrides', pruning });
    expect(overridden.alreadyImported).toBe(false);
    expect(overridden.manifest.id).not.toBe((await loadManifest(packDir)).id);
    expect(overridden.manifest.pruning).toEqual(pruning);
    await removePack(store, overridden.manifest.id);
  });

  it('another dtype is another pack; a name already taken by a different pack is refused', async () => {
    const half = await importCheckpoint(checkpoint, store, { name: 'gqa-fp16', dtype: 'fp16' });
    expect(half.alreadyImported).toBe(false);
    expect(half.manifest.id).not.toBe((await loadManifest(packDir)).id);
    expect(statSync(join(half.dir, 'layer_00.bin')).size).toBeLessThan(statSync(join(packDir, 'layer_00.bin')).size * 0.6);
    expect((await listPacks(store)).map((p) => p.name)).toEqual(['gqa', 'gqa-fp16']);
    expect((await findPack(store, half.manifest.id)).name).toBe('gqa-fp16');

    const other = join(root, 'other');
    await makeSyntheticCheckpoint(other, { seed: 9 });
    await expect(importCheckpoint(other, store, { name: 'gqa' })).rejects.toThrow(/a different model named "gqa" is already in the store/);
    await removePack(store, 'gqa-fp16');
    await expect(findPack(store, 'gqa-fp16')).rejects.toThrow(/no model "gqa-fp16".*installed: gqa \(/);
  });

  it('an updated checkpoint replaces its older import (same folder, name and options); another precision stays beside it', async () => {
    const folder = join(root, 'updated');
    const updates = join(root, 'store-updates');
    await makeSyntheticCheckpoint(folder, { seed: 3 });
    const old = await importCheckpoint(folder, updates);
    const half = await importCheckpoint(folder, updates, { dtype: 'fp16' });
    await makeSyntheticCheckpoint(folder, { seed: 4 }); // the app's demo model after an update: new weights, same place
    const replacedFirst: string[] = [];
    const updated = await importCheckpoint(folder, updates, { onReplace: async (older) => void replacedFirst.push(older.id) });
    expect(updated.manifest.id).not.toBe(old.manifest.id);
    expect(updated.replaced?.id).toBe(old.manifest.id);
    expect(replacedFirst).toEqual([old.manifest.id]);
    expect(existsSync(old.dir)).toBe(false);
    expect((await listPacks(updates)).map((p) => [p.name, p.id])).toEqual([
      ['updated', updated.manifest.id],
      ['updated (fp16)', half.manifest.id],
    ]);
  });
});

describe('quantized packs', () => {
  it('int4 and int8 packs quantize the decoder and vision linears and stay close to the fp32 pack', async () => {
    const checkpoint = join(root, 'quant');
    await makeSyntheticCheckpoint(checkpoint, { preset: 'tiny', seed: 5 });
    const store = join(root, 'store-quant');
    const full = await importCheckpoint(checkpoint, store, { name: 'fp32' });
    const x = Float32Array.from({ length: 5 * 64 }, (_, i) => Math.sin(i));
    const feeds = () => ({
      hidden: new ort.Tensor('float32', x, [1, 5, 64]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n, 3n, 4n]), [1, 5]),
      past_key: new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 16]),
      past_value: new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 16]),
      past_length: new ort.Tensor('int64', BigInt64Array.from([0n]), []),
      known_key_proj: new ort.Tensor('float32', new Float32Array(0), [1, 0, 4 * 16]),
    });
    const expected = (await run(full.dir, 'layer_01.onnx', feeds())).hidden_out.data as Float32Array;
    const size = loadReferenceModel(checkpoint).vision.imageSize;
    const pixels = () => ({
      pixel_values: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.37) * 1.5),
        [1, 3, size, size],
      ),
    });
    const features = async (dir: string) => (await run(dir, 'vision.onnx', pixels())).image_features.data as Float32Array;
    const expectedFeatures = await features(full.dir);
    for (const [dtype, bound, sizeRatio] of [
      ['int8', 0.02, 0.3],
      ['int4', 0.25, 0.2], // rows of 64 inputs are one block each: 21% measured
    ] as const) {
      const pack = await importCheckpoint(checkpoint, store, { name: dtype, dtype });
      expect(pack.manifest.dtype).toBe(dtype);
      expect(statSync(join(pack.dir, 'layer_01.bin')).size).toBeLessThan(statSync(join(full.dir, 'layer_01.bin')).size * sizeRatio);
      const out = (await run(pack.dir, 'layer_01.onnx', feeds())).hidden_out.data as Float32Array;
      expect(relativeError(out, expected)).toBeLessThan(bound); // exactness against dequantized weights: graphs.test.ts
      // The vision tower's linears are int8 in both: about a quarter of fp32 at CLIP-L, but this tower's rows of
      // 32 inputs fill half a 64-input block each.
      expect(statSync(join(pack.dir, 'vision.bin')).size).toBeLessThan(statSync(join(full.dir, 'vision.bin')).size * 0.6);
      expect(relativeError(await features(pack.dir), expectedFeatures)).toBeLessThan(0.02); // 0.95% measured
      expect(
        (await run(pack.dir, 'probe_01.onnx', { ...feeds(), query_start: new ort.Tensor('int64', BigInt64Array.from([3n]), [1]) }))
          .attention.dims,
      ).toEqual([5]);
    }
  });
});

describe('cancellation and bad input', () => {
  let checkpoint: string;
  beforeAll(async () => {
    checkpoint = join(root, 'tiny');
    await makeSyntheticCheckpoint(checkpoint, { preset: 'tiny' });
  });

  it('cancelling mid-build leaves the store without a pack or a temp folder', async () => {
    const store = join(root, 'store-cancel');
    const abort = new AbortController();
    const onProgress = (p: ImportProgress) => {
      if (p.stage === 'layers') abort.abort(new Error('user cancelled'));
    };
    await expect(importCheckpoint(checkpoint, store, { signal: abort.signal, onProgress })).rejects.toThrow('user cancelled');
    expect(readdirSync(store)).toEqual([]);
    const done = await importCheckpoint(checkpoint, store, {}); // and a later import succeeds
    expect(done.alreadyImported).toBe(false);
  });

  /** Copies the tiny checkpoint, breaks one thing, and expects the import to fail before any graph exists. */
  async function expectRejectedBeforeBuild(
    label: string,
    breakIt: (dir: string) => void,
    message: RegExp,
    options: SyntheticCheckpointOptions = { preset: 'tiny' },
  ) {
    const dir = join(root, `bad-${label}`);
    await makeSyntheticCheckpoint(dir, options);
    breakIt(dir);
    const store = join(root, `store-bad-${label}`);
    const stages: string[] = [];
    await expect(importCheckpoint(dir, store, { onProgress: (p) => stages.push(p.stage) })).rejects.toThrow(message);
    expect(stages).toEqual(['validate']);
    expect(existsSync(store)).toBe(false);
  }
  // biome-ignore lint/suspicious/noExplicitAny: each test breaks a different field of a JSON file on purpose
  const editJson = (path: string, edit: (v: any) => void) => {
    const value = JSON.parse(readFileSync(path, 'utf8'));
    edit(value);
    writeFileSync(path, JSON.stringify(value));
  };

  it('a folder that does not exist, a file, and a folder with no config.json are each named for what they are', async () => {
    const missing = join(root, 'no-such-folder');
    await expect(importCheckpoint(missing, join(root, 'store-missing'))).rejects.toThrow(`${missing} does not exist`);
    const file = join(root, 'a-file.txt');
    writeFileSync(file, 'hello');
    await expect(importCheckpoint(file, join(root, 'store-missing'))).rejects.toThrow(`${file} is a file, not a checkpoint folder`);
    const empty = mkdtempSync(join(root, 'empty-'));
    await expect(importCheckpoint(empty, join(root, 'store-missing'))).rejects.toThrow(`${empty}: no config.json`);
    expect(existsSync(join(root, 'store-missing'))).toBe(false);
  });

  it('truncated safetensors', async () => {
    await expectRejectedBeforeBuild(
      'truncated',
      (d) => truncateSync(join(d, 'model.safetensors'), statSync(join(d, 'model.safetensors')).size - 10),
      /model.safetensors: file is truncated/,
    );
  });

  it('a tensor shape that disagrees with config.json', async () => {
    await expectRejectedBeforeBuild(
      'shape',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.text_config.intermediate_size = 100;
        }),
      /checkpoint does not match config.json[\s\S]*"language_model.model.layers.0.mlp.gate_proj.weight" in .* has shape \[128, 64\], config.json implies \[100, 64\]/,
    );
  });

  it('a missing tensor', async () => {
    await expectRejectedBeforeBuild(
      'layers',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.text_config.num_hidden_layers = 5;
        }),
      /missing tensor "language_model.model.layers.4.input_layernorm.weight"/,
    );
  });

  it('an unknown architecture, malformed config.json, tokenizer and preprocessor problems', async () => {
    await expectRejectedBeforeBuild(
      'arch',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.model_type = 'idefics2';
        }),
      /unsupported model_type 'idefics2'; supported/,
    );
    await expectRejectedBeforeBuild('json', (d) => writeFileSync(join(d, 'config.json'), '{"model_type": '), /config.json: not valid JSON/);
    await expectRejectedBeforeBuild('tokenizer', (d) => rmSync(join(d, 'tokenizer.json')), /no tokenizer.json/);
    await expectRejectedBeforeBuild(
      'tokenizer-model',
      (d) => writeFileSync(join(d, 'tokenizer.json'), '{"version": "1.0"}'),
      /tokenizer.json: .*no "model" section/,
    );
    await expectRejectedBeforeBuild(
      'image-token',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.image_token_index = 99999;
        }),
      /tokenizer.json: has no token with id 99999, config.json's image_token_index/,
    );
    await expectRejectedBeforeBuild(
      'crop',
      (d) =>
        editJson(join(d, 'preprocessor_config.json'), (p) => {
          p.crop_size = { height: 30, width: 30 };
        }),
      /images must come out 28x28 .* but crop\/size give 30x30/,
    );
  });

  it('LLaVA-NeXT problems: no image_newline, tiling that disagrees with the model, CLS features, odd resolutions', async () => {
    const next: SyntheticCheckpointOptions = {
      preset: 'tiny',
      gridPinpoints: [
        [28, 56],
        [56, 28],
        [56, 56],
      ],
    };
    const expectRejected = (label: string, breakIt: (dir: string) => void, message: RegExp) =>
      expectRejectedBeforeBuild(`next-${label}`, breakIt, message, next);
    // A LLaVA-1.5 checkpoint relabelled as NeXT has no image_newline.
    await expectRejectedBeforeBuild(
      'next-newline',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.model_type = 'llava_next';
          c.image_grid_pinpoints = next.gridPinpoints;
        }),
      /missing tensor "image_newline"/,
    );
    await expectRejected(
      'pinpoints',
      (d) =>
        editJson(join(d, 'preprocessor_config.json'), (p) => {
          p.image_grid_pinpoints = [[28, 56]];
        }),
      /image_grid_pinpoints \[\[28,56\]\] differ from config.json's/,
    );
    await expectRejected(
      'full',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.vision_feature_select_strategy = 'full';
        }),
      /unsupported vision_feature_select_strategy 'full' with llava_next; supported: .*'llava_next'/,
    );
    await expectRejected(
      'tile',
      (d) =>
        editJson(join(d, 'config.json'), (c) => {
          c.image_grid_pinpoints = [[28, 50]];
        }),
      /image_grid_pinpoints entry \[28, 50\] is not a whole number of 28-pixel tiles/,
    );
  });
});

describe('tied embeddings, the full select strategy and an explicit feature layer', () => {
  it('head reads embed_tokens, vision keeps CLS and stops at the requested layer', async () => {
    const checkpoint = join(root, 'tied');
    await makeSyntheticCheckpoint(checkpoint, { preset: 'tiny', tieWordEmbeddings: true, selectStrategy: 'full', visionFeatureLayer: 1 });
    const pack = await importCheckpoint(checkpoint, join(root, 'store-tied'));
    expect(pack.manifest).toMatchObject({
      numVisualTokens: 17,
      chatTemplate: null,
      config: { visionFeatureLayer: 1, text: { tieWordEmbeddings: true } },
    });
    const ref = loadReferenceModel(checkpoint);
    const pixels = Float32Array.from({ length: 3 * 28 * 28 }, (_, i) => Math.cos(i * 0.11));
    const vision = await run(pack.dir, 'vision.onnx', { pixel_values: new ort.Tensor('float32', pixels, [1, 3, 28, 28]) });
    const expected = referenceVision(ref, pixels);
    expect(vision.vision_features.dims).toEqual([1, 17, 32]);
    expect(relativeError(vision.image_features.data as Float32Array, expected.imageFeatures.data)).toBeLessThan(1e-4);
    const head = await run(pack.dir, 'head.onnx', { hidden: vision.image_features });
    expect(relativeError(head.logits.data as Float32Array, referenceHead(ref, expected.imageFeatures).data)).toBeLessThan(1e-4);
  });
});

describe('a broken pack folder', () => {
  it('is rebuilt by the next import instead of being reported as imported', async () => {
    const checkpoint = join(root, 'rebuild');
    await makeSyntheticCheckpoint(checkpoint, { preset: 'tiny', seed: 3 });
    const store = join(root, 'store-rebuild');
    const first = await importCheckpoint(checkpoint, store);
    writeFileSync(join(first.dir, 'manifest.json'), '{"formatVersion": 1');
    expect(await listPacks(store)).toEqual([]);
    await expect(readPack(first.dir)).rejects.toThrow(/manifest.json: /);
    const second = await importCheckpoint(checkpoint, store);
    expect(second).toMatchObject({ dir: first.dir, alreadyImported: false });
    expect((await readPack(second.dir)).id).toBe(first.manifest.id);
  });
  it('made by an older pack format is refused with the way out, not a schema dump', async () => {
    const checkpoint = join(root, 'older');
    await makeSyntheticCheckpoint(checkpoint, { preset: 'tiny', seed: 4 });
    const { dir } = await importCheckpoint(checkpoint, join(root, 'store-older'));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, formatVersion: 2 }));
    await expect(readPack(dir)).rejects.toThrow(/older version \(pack format 2, now 3\); import the checkpoint again/);
    const again = await importCheckpoint(checkpoint, join(root, 'store-older'));
    expect(again).toMatchObject({ dir, alreadyImported: false });
    expect((await readPack(dir)).manifest.formatVersion).toBe(3);
  });
});
