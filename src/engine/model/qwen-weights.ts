// Qwen2.5-VL weight names (the Hub's layout, which transformers 5 also writes: `visual.`, `model.`, `lm_head.weight`;
// and the in-memory layout `model.visual.`, `model.language_model.`) and the check that a checkpoint holds every
// tensor the graphs will read, with the right shape and a float dtype.

import type { TensorSet } from '../io/safetensors.js';
import type { QwenVLConfig } from './qwen-config.js';
import { checkTensors, WeightError } from './weights.js';

const LAYOUTS = [
  { vision: 'visual.', text: 'model.' },
  { vision: 'model.visual.', text: 'model.language_model.' },
] as const;

/** Maps names relative to each tower (`blocks.3.attn.qkv.weight`, `layers.3.mlp.up_proj.weight`) to the checkpoint's. */
export class QwenWeightNames {
  constructor(
    private readonly prefixes: (typeof LAYOUTS)[number],
    private readonly tied: boolean,
  ) {}

  vision(name: string): string {
    return this.prefixes.vision + name;
  }
  text(name: string): string {
    return this.prefixes.text + name;
  }
  /** With tied embeddings the output projection is the token embedding matrix. */
  lmHead(): string {
    return this.tied ? this.text('embed_tokens.weight') : 'lm_head.weight';
  }
}

/** The names the Hub's checkpoints use (and transformers 5 saves): `visual.`, `model.`, `lm_head.weight`. */
export function hubQwenNames(tied: boolean): QwenWeightNames {
  return new QwenWeightNames(LAYOUTS[0], tied);
}

/** Every tensor the graphs read, with its shape as stored (Linear weights [out, in]; the patch embedding a Conv3d). */
export function expectedQwenTensors(config: QwenVLConfig, names: QwenWeightNames): { name: string; shape: number[] }[] {
  const { text: t, vision: v } = config;
  const out: { name: string; shape: number[] }[] = [];
  const add = (name: string, shape: number[]) => out.push({ name, shape });
  const linear = (prefix: string, outputs: number, inputs: number, bias: boolean) => {
    add(`${prefix}.weight`, [outputs, inputs]);
    if (bias) add(`${prefix}.bias`, [outputs]);
  };

  add(names.vision('patch_embed.proj.weight'), [v.hiddenSize, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]);
  for (let i = 0; i < v.depth; i++) {
    const p = (s: string) => names.vision(`blocks.${i}.${s}`);
    add(p('norm1.weight'), [v.hiddenSize]);
    add(p('norm2.weight'), [v.hiddenSize]);
    linear(p('attn.qkv'), 3 * v.hiddenSize, v.hiddenSize, true);
    linear(p('attn.proj'), v.hiddenSize, v.hiddenSize, true);
    linear(p('mlp.gate_proj'), v.intermediateSize, v.hiddenSize, true);
    linear(p('mlp.up_proj'), v.intermediateSize, v.hiddenSize, true);
    linear(p('mlp.down_proj'), v.hiddenSize, v.intermediateSize, true);
  }
  const merged = v.hiddenSize * v.spatialMergeSize ** 2;
  add(names.vision('merger.ln_q.weight'), [v.hiddenSize]);
  linear(names.vision('merger.mlp.0'), merged, merged, true);
  linear(names.vision('merger.mlp.2'), v.outHiddenSize, merged, true);

  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  add(names.text('embed_tokens.weight'), [t.vocabSize, t.hiddenSize]);
  for (let i = 0; i < t.numLayers; i++) {
    const p = (s: string) => names.text(`layers.${i}.${s}`);
    add(p('input_layernorm.weight'), [t.hiddenSize]);
    linear(p('self_attn.q_proj'), q, t.hiddenSize, true);
    linear(p('self_attn.k_proj'), kv, t.hiddenSize, true);
    linear(p('self_attn.v_proj'), kv, t.hiddenSize, true);
    linear(p('self_attn.o_proj'), t.hiddenSize, q, false);
    add(p('post_attention_layernorm.weight'), [t.hiddenSize]);
    linear(p('mlp.gate_proj'), t.intermediateSize, t.hiddenSize, false);
    linear(p('mlp.up_proj'), t.intermediateSize, t.hiddenSize, false);
    linear(p('mlp.down_proj'), t.hiddenSize, t.intermediateSize, false);
  }
  add(names.text('norm.weight'), [t.hiddenSize]);
  if (!t.tieWordEmbeddings) add(names.lmHead(), [t.vocabSize, t.hiddenSize]);
  return out;
}

/** Checks the whole checkpoint up front and reports every problem at once; returns the names to read with. */
export function checkQwenTensors(config: QwenVLConfig, tensors: TensorSet): QwenWeightNames {
  const all = new Set(tensors.names());
  const layout = LAYOUTS.find((l) => all.has(`${l.text}embed_tokens.weight`));
  if (!layout)
    throw new WeightError(`no token embedding found: expected "${LAYOUTS.map((l) => `${l.text}embed_tokens.weight`).join('" or "')}"`);
  const names = new QwenWeightNames(layout, config.text.tieWordEmbeddings);
  checkTensors(expectedQwenTensors(config, names), (name) => tensors.get(name), 'config.json', 'Qwen2.5-VL weight names');
  return names;
}
