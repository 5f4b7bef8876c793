// Opening a model pack for inference: the validated manifest plus what the runtime derives from it.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PruningOverrides } from '../../shared/pruning.js';
import { parseClipParams, type ClipParams } from '../image/preprocess.js';
import type { QwenImageParams } from '../image/qwen.js';
import { isQwen, type ModelConfig } from '../model/qwen-config.js';
import { loadManifest, ManifestError, TOKENIZER_FILE, type PackManifest } from './manifest.js';
import { describeIssues } from '../../shared/result.js';

export interface PackInfo {
  dir: string;
  id: string;
  name: string;
  manifest: PackManifest;
  config: ModelConfig;
  /** The image processor's parameters: CLIP's (LLaVA packs) or Qwen2-VL's (Qwen2.5-VL packs); the other is null. */
  clip: ClipParams | null;
  qwenImage: QwenImageParams | null;
  pruning?: PruningOverrides;
  extraEosTokenIds: number[];
}

/** Loads and validates a pack: manifest schema, pruning overrides, and every file it names is present. */
export async function readPack(dir: string): Promise<PackInfo> {
  const manifest = await loadManifest(dir);
  const { graphs } = manifest;
  const files = [
    TOKENIZER_FILE,
    graphs.embed,
    ...(graphs.vision ? [graphs.vision] : []),
    graphs.head,
    ...graphs.layers,
    ...graphs.probes,
    ...Object.keys(manifest.weightsSha256),
  ];
  const missing = (await Promise.all(files.map(async (f) => ((await stat(join(dir, f)).catch(() => null))?.isFile() ? null : f)))).filter(
    Boolean,
  );
  if (missing.length) throw new ManifestError(`${dir}: model pack is incomplete, missing ${missing.join(', ')}`);
  let pruning: PruningOverrides | undefined;
  if (manifest.pruning) {
    const parsed = PruningOverrides.safeParse(manifest.pruning);
    if (!parsed.success) throw new ManifestError(`${dir}: manifest pruning overrides are invalid (${describeIssues(parsed.error)})`);
    pruning = parsed.data;
  }
  return {
    dir,
    id: manifest.id,
    name: manifest.name,
    manifest,
    config: manifest.config,
    ...imageParams(manifest, dir),
    pruning,
    extraEosTokenIds: manifest.extraEosTokenIds,
  };
}

function imageParams({ config, image }: PackManifest, dir: string): Pick<PackInfo, 'clip' | 'qwenImage'> {
  if (image === null) return { clip: null, qwenImage: null }; // a text-only model
  const qwenImage = 'minPixels' in image ? image : null;
  if (isQwen(config) !== (qwenImage !== null)) throw new ManifestError(`${dir}: the manifest's image parameters do not fit its model`);
  return qwenImage ? { clip: null, qwenImage } : { clip: parseClipParams(image as Exclude<typeof image, QwenImageParams>), qwenImage };
}
