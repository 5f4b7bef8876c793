// Hugging Face LLaVA weight names, for both layouts transformers has written, and the check that a
// checkpoint holds every tensor the graphs will read, with the right shape and a float dtype.

import { FLOAT_DTYPES, isFloatDtype, type SafetensorsDtype, type TensorSet } from '../io/safetensors.js';
import type { ExactBlocks } from '../onnx/blocks.js';
import type { LlavaConfig, VisionConfig } from './config.js';

export type WeightLayout = 'legacy' | 'unified';

/** Weights by Hugging Face name, as float32, whatever file they come from. */
export interface WeightSource {
  dims(name: string): number[];
  readF32(name: string): Promise<Float32Array>;
  /** The weight's own blocks where MatMulNBits holds them exactly at `bits` (GGUF Q4_0 / Q8_0), else null. */
  exact?(name: string, bits: 4 | 8): ExactBlocks | null;
}

const PREFIXES: Record<WeightLayout, { vision: string; projector: string; text: string; lmHead: string; imageNewline: string }> = {
  // llava-hf checkpoints saved before transformers 4.52
  legacy: {
    vision: 'vision_tower.vision_model.',
    projector: 'multi_modal_projector.',
    text: 'language_model.model.',
    lmHead: 'language_model.lm_head.weight',
    imageNewline: 'image_newline',
  },
  // transformers >= 4.52 (LlavaModel + lm_head)
  unified: {
    vision: 'model.vision_tower.vision_model.',
    projector: 'model.multi_modal_projector.',
    text: 'model.language_model.',
    lmHead: 'lm_head.weight',
    imageNewline: 'model.image_newline',
  },
};

/** Maps names relative to each sub-model (e.g. `layers.3.mlp.up_proj.weight`) to the checkpoint's full names. */
export class WeightNames {
  /**
   * `flatVision`: the CLIP tower's names lack the `vision_model.` level (`vision_tower.embeddings.…`), as
   * transformers 5 saves its flattened CLIPVisionModel.
   */
  constructor(
    readonly layout: WeightLayout,
    private readonly tied: boolean,
    /** The vision tower's prefix when it differs from the layout's (see detectVisionPrefix). */
    private readonly visionPrefix = PREFIXES[layout].vision,
  ) {}

  vision(name: string): string {
    return this.visionPrefix + name;
  }
  projector(name: string): string {
    return PREFIXES[this.layout].projector + name;
  }
  text(name: string): string {
    return PREFIXES[this.layout].text + name;
  }
  /** LLaVA-NeXT's learned vector appended after each row of tile features. */
  imageNewline(): string {
    return PREFIXES[this.layout].imageNewline;
  }
  /** With tied embeddings the output projection is the token embedding matrix. */
  lmHead(): string {
    return this.tied ? this.text('embed_tokens.weight') : PREFIXES[this.layout].lmHead;
  }
}

/** A legacy llava-hf weight name in the transformers >= 4.52 layout (how a checkpoint saved by newer transformers names it). */
export function legacyToUnifiedName(legacy: string): string {
  const from = PREFIXES.legacy;
  const to = PREFIXES.unified;
  if (legacy === from.lmHead) return to.lmHead;
  if (legacy === from.imageNewline) return to.imageNewline;
  for (const part of ['vision', 'projector', 'text'] as const) {
    if (legacy.startsWith(from[part])) return to[part] + legacy.slice(from[part].length);
  }
  throw new WeightError(`"${legacy}" is not a llava-hf weight name`);
}

export class WeightError extends Error {
  override name = 'WeightError';
}

export function detectLayout(tensorNames: Iterable<string>): WeightLayout {
  const names = new Set(tensorNames);
  for (const layout of ['legacy', 'unified'] as const) {
    if (names.has(`${PREFIXES[layout].text}embed_tokens.weight`)) return layout;
  }
  throw new WeightError(
    `no token embedding found: expected "${PREFIXES.legacy.text}embed_tokens.weight" (llava-hf) or ` +
      `"${PREFIXES.unified.text}embed_tokens.weight" (transformers >= 4.52)`,
  );
}

/**
 * transformers 5 saves the CLIP tower without its `vision_model.` level (CLIPVisionModel is flat
 * there): `vision_tower.embeddings...` instead of `vision_tower.vision_model.embeddings...`.
 */
export function detectVisionPrefix(tensorNames: Iterable<string>, layout: WeightLayout): string {
  const names = new Set(tensorNames);
  const nested = PREFIXES[layout].vision;
  const flat = nested.replace(/vision_model\.$/, '');
  return names.has(`${flat}embeddings.patch_embedding.weight`) && !names.has(`${nested}embeddings.patch_embedding.weight`) ? flat : nested;
}

/** Every tensor the graphs read, with its shape as stored (PyTorch Linear weights are [out, in]). */
export function expectedTensors(config: LlavaConfig, names: WeightNames): { name: string; shape: number[] }[] {
  const { text: t, vision: v } = config;
  const out: { name: string; shape: number[] }[] = [];
  const add = (name: string, shape: number[]) => out.push({ name, shape });
  if (v) visionTensors(config, v, names, add);

  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  add(names.text('embed_tokens.weight'), [t.vocabSize, t.hiddenSize]);
  for (let i = 0; i < t.numLayers; i++) {
    const p = `layers.${i}.`;
    add(names.text(`${p}input_layernorm.weight`), [t.hiddenSize]);
    add(names.text(`${p}self_attn.q_proj.weight`), [q, t.hiddenSize]);
    add(names.text(`${p}self_attn.k_proj.weight`), [kv, t.hiddenSize]);
    add(names.text(`${p}self_attn.v_proj.weight`), [kv, t.hiddenSize]);
    add(names.text(`${p}self_attn.o_proj.weight`), [t.hiddenSize, q]);
    add(names.text(`${p}post_attention_layernorm.weight`), [t.hiddenSize]);
    add(names.text(`${p}mlp.gate_proj.weight`), [t.intermediateSize, t.hiddenSize]);
    add(names.text(`${p}mlp.up_proj.weight`), [t.intermediateSize, t.hiddenSize]);
    add(names.text(`${p}mlp.down_proj.weight`), [t.hiddenSize, t.intermediateSize]);
  }
  add(names.text('norm.weight'), [t.hiddenSize]);
  if (!t.tieWordEmbeddings) add(names.lmHead(), [t.vocabSize, t.hiddenSize]);
  return out;
}

/** Checks the whole checkpoint up front and reports every problem at once; returns the names to read with. */
export function checkCheckpointTensors(config: LlavaConfig, tensors: TensorSet): WeightNames {
  const layout = detectLayout(tensors.names());
  const names = new WeightNames(layout, config.text.tieWordEmbeddings, detectVisionPrefix(tensors.names(), layout));
  checkTensors(expectedTensors(config, names), (name) => tensors.get(name), 'config.json', `${names.layout} weight names`);
  return names;
}

/** What a checkpoint holds under one name: its stored shape and, for safetensors, its dtype and file. */
export interface FoundTensor {
  shape: readonly number[];
  dtype?: SafetensorsDtype;
  file: string;
}

/**
 * Every tensor the graphs will read is there, in a float dtype, with the shape `source` (config.json, a GGUF's
 * metadata) implies; every problem is reported at once, in a WeightError naming `layout`.
 */
export function checkTensors(
  expected: { name: string; shape: number[] }[],
  find: (name: string) => FoundTensor | undefined,
  source: string,
  layout: string,
): void {
  const problems: string[] = [];
  for (const { name, shape } of expected) {
    const entry = find(name);
    if (!entry) problems.push(`missing tensor "${name}"`);
    else if (entry.dtype !== undefined && !isFloatDtype(entry.dtype))
      problems.push(`tensor "${name}" in ${entry.file} has dtype ${entry.dtype}, expected one of ${FLOAT_DTYPES.join(', ')}`);
    else if (entry.shape.join() !== shape.join())
      problems.push(`tensor "${name}" in ${entry.file} has shape [${entry.shape.join(', ')}], ${source} implies [${shape.join(', ')}]`);
  }
  if (!problems.length) return;
  const more = problems.length > 12 ? `\n  ... and ${problems.length - 12} more` : '';
  throw new WeightError(`checkpoint does not match ${source} (${layout}):\n  ${problems.slice(0, 12).join('\n  ')}${more}`);
}

/** The CLIP tower's tensors up to the feature layer, the projector's, and NeXT's image_newline. */
function visionTensors(config: LlavaConfig, v: VisionConfig, names: WeightNames, add: (name: string, shape: number[]) => void): void {
  const t = config.text;
  const grid = v.imageSize / v.patchSize;

  add(names.vision('embeddings.patch_embedding.weight'), [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize]);
  add(names.vision('embeddings.class_embedding'), [v.hiddenSize]);
  add(names.vision('embeddings.position_embedding.weight'), [grid * grid + 1, v.hiddenSize]);
  add(names.vision('pre_layrnorm.weight'), [v.hiddenSize]);
  add(names.vision('pre_layrnorm.bias'), [v.hiddenSize]);
  for (let i = 0; i < config.visionFeatureLayer; i++) {
    const p = `encoder.layers.${i}.`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(names.vision(`${p}self_attn.${proj}.weight`), [v.hiddenSize, v.hiddenSize]);
      add(names.vision(`${p}self_attn.${proj}.bias`), [v.hiddenSize]);
    }
    for (const norm of ['layer_norm1', 'layer_norm2']) {
      add(names.vision(`${p}${norm}.weight`), [v.hiddenSize]);
      add(names.vision(`${p}${norm}.bias`), [v.hiddenSize]);
    }
    add(names.vision(`${p}mlp.fc1.weight`), [v.intermediateSize, v.hiddenSize]);
    add(names.vision(`${p}mlp.fc1.bias`), [v.intermediateSize]);
    add(names.vision(`${p}mlp.fc2.weight`), [v.hiddenSize, v.intermediateSize]);
    add(names.vision(`${p}mlp.fc2.bias`), [v.hiddenSize]);
  }

  if (config.anyres) add(names.imageNewline(), [t.hiddenSize]);
  add(names.projector('linear_1.weight'), [t.hiddenSize, v.hiddenSize]);
  add(names.projector('linear_2.weight'), [t.hiddenSize, t.hiddenSize]);
  if (config.projectorBias) {
    add(names.projector('linear_1.bias'), [t.hiddenSize]);
    add(names.projector('linear_2.bias'), [t.hiddenSize]);
  }
}
