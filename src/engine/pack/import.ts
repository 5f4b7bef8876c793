// importCheckpoint: Hugging Face LLaVA-1.5 or LLaVA-NeXT folder, or a llama.cpp GGUF (with its mmproj) -> model pack in the store.
// Everything is validated first; the graphs are then written into a temp folder inside the store
// and renamed into place in one step, so a failed or cancelled import leaves nothing behind.

import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { basename, join, resolve } from 'node:path';
import type { Progress } from '../../shared/progress.js';
import { numVisualTokens } from '../model/config.js';
import { fsyncPath, sha256Files, sha256Text, writeFileAtomic } from '../io/files.js';
import type { WeightReader } from '../onnx/blocks.js';
import { buildDecoderLayer, layerGraphName } from '../onnx/graphs/decoder-layer.js';
import { buildEmbed, buildHead } from '../onnx/graphs/embed-head.js';
import { buildProbe, probeGraphName } from '../onnx/graphs/probe.js';
import { buildQwenVision } from '../onnx/graphs/qwen-vision.js';
import type { DecoderSource } from '../onnx/graphs/source.js';
import { buildVision } from '../onnx/graphs/vision.js';
import { WeightFile, type WeightDtype } from '../onnx/weight-file.js';
import { isQwenCheckpoint, readCheckpoint, type Checkpoint, type QwenCheckpoint } from './checkpoint.js';
import { ggufSource, readGgufCheckpoint } from './gguf-checkpoint.js';
import type { BuiltGraphs, ManifestFields } from './graph-set.js';
import { makeQwenManifest } from './qwen.js';
import { loadManifest, MANIFEST_FILE, PACK_FORMAT_VERSION, type PackManifest } from './manifest.js';
import { IMPORTING_PREFIX, listPacks, removeAbandonedImports, type PackSummary } from './store.js';

export type ImportStage = 'validate' | 'hash' | 'vision' | 'embed' | 'layers' | 'head' | 'finalize';

/** Overall progress as a fraction (`done` of a `total` of 1), and the stage it is in. */
export interface ImportProgress extends Progress {
  stage: ImportStage;
  message: string;
}

export interface ImportOptions {
  /** Display name; defaults to the checkpoint folder's name, with the precision after it unless fp32 ("llava-1.5-7b-hf (int4)"). */
  name?: string;
  /** `keep` (GGUF only): the precision nearest the file's own (see gguf-checkpoint.ts keepDtype). */
  dtype?: ImportDtype;
  /** A GGUF language model's vision projector (mmproj GGUF); without it a GGUF imports as a text-only model. */
  mmproj?: string;
  /** Per-model pruning schedule overrides to store in the manifest. */
  pruning?: Record<string, unknown>;
  onProgress?: (progress: ImportProgress) => void;
  /** Called before an older import of the same source with the same options is removed (its files changed). */
  onReplace?: (older: PackSummary) => Promise<void>;
  signal?: AbortSignal;
}

export type ImportDtype = WeightDtype | 'keep';

export interface ImportedPack {
  dir: string;
  manifest: PackManifest;
  /** True when the store already held this checkpoint with these options: nothing was written. */
  alreadyImported: boolean;
  /** The older import of the same source and options that this one replaced (the source's files had changed). */
  replaced?: PackSummary;
}

const BUILD_START = 0.1; // validation and hashing take the first tenth of the bar

export async function importCheckpoint(hfDir: string, storeDir: string, options: ImportOptions = {}): Promise<ImportedPack> {
  const { signal } = options;
  const report = (stage: ImportStage, fraction: number, message: string) =>
    options.onProgress?.({ stage, done: fraction, total: 1, message });
  const source = resolve(hfDir);

  report('validate', 0, `checking ${source}`);
  const gguf = await ggufSource(source, options.mmproj && resolve(options.mmproj));
  const checkpoint = gguf ? await readGgufCheckpoint(gguf.model, gguf.mmproj) : await readCheckpoint(source);
  signal?.throwIfAborted();
  const dtype = resolveDtype(options.dtype ?? (checkpoint.keepDtype ? 'keep' : 'fp32'), checkpoint);

  const files = checkpoint.definingFiles;
  const sourceSha = await sha256Files(files, {
    signal,
    onFile: (i, file) => report('hash', 0.02 + (BUILD_START - 0.02) * (i / files.length), `hashing ${file}`),
  });
  // Every option that changes the pack's contents is in its id, so a re-import with other options is a new pack.
  // The format version is not: a pack of an older format does not list, and a re-import replaces it in place
  // under the same id (which settings and conversations name).
  const overrides = options.pruning ? `\n${JSON.stringify(options.pruning)}` : '';
  const id = sha256Text(`transprune-pack/1\n${sourceSha}\n${dtype}${overrides}`).slice(0, 16);
  // Packs of one checkpoint at several precisions sit side by side: the default name says which is which.
  const base = basename(source).replace(/\.gguf$/i, '');
  const name = options.name ?? (dtype === 'fp32' ? base : `${base} (${dtype})`);
  await removeAbandonedImports(storeDir);
  const packs = await listPacks(storeDir);
  const existing = packs.find((p) => p.id === id);
  if (existing) {
    report('finalize', 1, `already imported as "${existing.name}"`);
    return { dir: existing.path, manifest: existing.manifest, alreadyImported: true };
  }
  // A pack of this name from the same source with the same options is an import of the files as they were: an
  // updated checkpoint (the app's demo model after an update) replaces it. Anything else keeps its name.
  const clash = packs.find((p) => p.name === name);
  const older = clash && isOlderImport(clash, source, dtype, options.pruning) ? clash : undefined;
  if (clash && !older) throw new Error(`a different model named "${name}" is already in the store (id ${clash.id}); choose another name`);

  await mkdir(storeDir, { recursive: true, mode: 0o700 });
  // The pid tells a later import whether the process that owns this folder is still at work.
  const temp = join(storeDir, `${IMPORTING_PREFIX}${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const dir = join(storeDir, id);
  // A folder with this id that did not list as a pack is a broken leftover (e.g. a hand-deleted file) or of an older
  // format: replace it.
  await rm(dir, { recursive: true, force: true });
  try {
    await mkdir(temp);
    const progress = (stage: ImportStage, done: number, total: number, message: string) =>
      report(stage, BUILD_START + (1 - BUILD_START) * 0.98 * (done / total), message);
    const built = await writeGraphs(checkpoint, temp, dtype, progress, signal);
    for (const file of checkpoint.tokenizerFiles) {
      if ('path' in file) await copyFile(file.path, join(temp, file.name));
      else await writeFile(join(temp, file.name), file.text);
      await fsyncPath(join(temp, file.name));
    }
    const fields = { id, name, dtype, sourceSha, source, pruning: options.pruning, ...built };
    const manifest = isQwenCheckpoint(checkpoint) ? makeQwenManifest(checkpoint, fields) : makeManifest(checkpoint, fields);
    await writeFileAtomic(join(temp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    signal?.throwIfAborted();
    report('finalize', 0.99, 'moving the pack into the store');
    // Every file and the folder's entries are on disk before the rename makes the pack visible, so a
    // power cut never leaves a pack whose manifest is there but whose weights are zeros.
    await fsyncPath(temp);
    const renamed = await renameIfAbsent(temp, dir);
    await fsyncPath(storeDir);
    if (!renamed) {
      report('finalize', 1, 'already imported (by a concurrent import)');
      return { dir, manifest: await loadManifest(dir), alreadyImported: true };
    }
    if (older) {
      await options.onReplace?.(older);
      await rm(older.path, { recursive: true, force: true });
      report('finalize', 1, `imported "${name}", replacing the older import of ${source} (id ${older.id})`);
      return { dir, manifest, alreadyImported: false, replaced: older };
    }
    report('finalize', 1, `imported "${name}"`);
    return { dir, manifest, alreadyImported: false };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

function resolveDtype(dtype: ImportDtype, checkpoint: Checkpoint | QwenCheckpoint): WeightDtype {
  if (dtype !== 'keep') return dtype;
  if (!checkpoint.keepDtype)
    throw new Error('--dtype keep applies to GGUF files; a Hugging Face folder imports as fp32, fp16, int8 or int4');
  return checkpoint.keepDtype;
}

/**
 * What a pack of `dtype` costs in memory, when that surprises: ONNX Runtime constant-folds an fp16 pack's
 * Casts at session creation, so its weights sit in memory as float32, twice their size on disk. On a CPU
 * int8 (about half the fp16 size, and faster) or int4 keep the weights compact. Null when there is nothing to say.
 */
export function dtypeMemoryNote(dtype: WeightDtype, weightBytes: number): string | null {
  if (dtype !== 'fp16') return null;
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;
  return (
    `fp16 weights are ${gb(weightBytes)} on disk but ONNX Runtime expands them to float32 when it loads them: ` +
    `about ${gb(2 * weightBytes)} of memory. On a CPU, import with --dtype int8 or int4 instead (smaller in memory and faster to decode).`
  );
}

/** Writes every graph and its weight file into `dir`; probe_NN shares layer_NN's weight file. */
async function writeGraphs(
  checkpoint: Checkpoint | QwenCheckpoint,
  dir: string,
  dtype: WeightDtype,
  progress: (stage: ImportStage, done: number, total: number, message: string) => void,
  signal?: AbortSignal,
): Promise<BuiltGraphs> {
  const reader: WeightReader = {
    read: async (name) => {
      signal?.throwIfAborted(); // checked per tensor: cancellation never waits for a whole graph
      return { data: await checkpoint.tensors.readF32(name), dims: checkpoint.tensors.dims(name) };
    },
    dims: (name) => checkpoint.tensors.dims(name),
    exact: (name, bits) => checkpoint.tensors.exact?.(name, bits) ?? null,
  };
  // The text side is the same graphs for both families (Qwen2: q/k/v biases and M-RoPE); the vision tower is each one's.
  const src: DecoderSource = { config: checkpoint.config, names: checkpoint.names, reader };
  const buildVisionGraph = isQwenCheckpoint(checkpoint)
    ? (f: WeightFile) => buildQwenVision({ config: checkpoint.config, names: checkpoint.names, reader }, f)
    : (f: WeightFile) => buildVision({ config: checkpoint.config, names: checkpoint.names, reader }, f);
  const numLayers = checkpoint.config.text.numLayers;
  const total = numLayers + (checkpoint.config.vision ? 3 : 2);
  const weightsSha256: Record<string, string> = {};
  let done = 0;

  /** Builds the graphs that share one weight file, then records the file's hash. */
  const write = async (
    stage: ImportStage,
    base: string,
    fileDtype: WeightDtype,
    graphs: [string, (file: WeightFile) => Promise<Uint8Array>][],
    int8Activations = true,
  ) => {
    progress(stage, done, total, `building ${graphs.map(([g]) => g).join(' + ')}`);
    const file = new WeightFile(join(dir, `${base}.bin`), fileDtype, { int8Activations });
    try {
      for (const [graphName, build] of graphs) await writeFile(join(dir, `${graphName}.onnx`), await build(file), { flush: true });
    } finally {
      weightsSha256[file.location] = file.close();
    }
    done++;
  };

  // Quantized packs quantize the decoder and head linears to their width and the vision tower's to int8: ORT
  // holds fp16 weights as fp32 (constant-folded casts), which at CLIP-L/336 is 1.2 GB of RAM against 0.3.
  // The tower's inputs stay float: ViT activations have outlier channels, and the tower runs once per image
  // (int8 inputs made a CLIP-L MLP pair at 577 tokens 29% faster). The embedding table stays fp16 (a Gather
  // reads it before the cast).
  const floatDtype: WeightDtype = dtype === 'fp32' ? 'fp32' : 'fp16';
  const visionDtype: WeightDtype = dtype === 'int4' || dtype === 'int8' ? 'int8' : floatDtype;
  if (checkpoint.config.vision) await write('vision', 'vision', visionDtype, [['vision', buildVisionGraph]], false);
  await write('embed', 'embed', floatDtype, [['embed', (f) => buildEmbed(src, f)]]);
  for (let layer = 0; layer < numLayers; layer++) {
    const base = layerGraphName(layer);
    await write('layers', base, dtype, [
      [base, (f) => buildDecoderLayer(src, layer, f)],
      [probeGraphName(layer), (f) => buildProbe(src, layer, f)],
    ]);
  }
  await write('head', 'head', dtype, [['head', (f) => buildHead(src, f)]]);
  progress('head', done, total, 'graphs written');

  const layers = Array.from({ length: numLayers }, (_, l) => `${layerGraphName(l)}.onnx`);
  const probes = Array.from({ length: numLayers }, (_, l) => `${probeGraphName(l)}.onnx`);
  const vision = checkpoint.config.vision ? 'vision.onnx' : null;
  return { graphs: { embed: 'embed.onnx', vision, head: 'head.onnx', layers, probes }, weightsSha256 };
}

function makeManifest(checkpoint: Checkpoint, p: ManifestFields): PackManifest {
  const { vision } = checkpoint.config;
  const grid = vision && vision.imageSize / vision.patchSize;
  return {
    formatVersion: PACK_FORMAT_VERSION,
    id: p.id,
    name: p.name,
    created: new Date().toISOString(),
    source: { path: p.source, sha256: p.sourceSha, layout: checkpoint.layout },
    dtype: p.dtype,
    weightsSha256: p.weightsSha256,
    config: checkpoint.config,
    extraEosTokenIds: checkpoint.extraEosTokenIds,
    numVisualTokens: numVisualTokens(checkpoint.config),
    patchGrid: grid ? { rows: grid, cols: grid } : null,
    image: checkpoint.image,
    chatTemplate: checkpoint.chatTemplate,
    ...(checkpoint.chatContent === 'text' ? { chatContent: 'text' as const } : {}),
    graphs: p.graphs,
    ...(p.pruning ? { pruning: p.pruning } : {}),
  };
}

/** rename(2) onto a missing folder; false when another import got there first. */
async function renameIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw err;
  }
}

/** Whether `pack` was imported from `source` with these options (only the source's files can have changed since). */
function isOlderImport(pack: PackSummary, source: string, dtype: string, pruning: ImportOptions['pruning']): boolean {
  return pack.manifest.source.path === source && pack.manifest.dtype === dtype && isDeepStrictEqual(pack.manifest.pruning, pruning);
}
