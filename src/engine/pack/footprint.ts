import { totalmem } from 'node:os';
import {
  footprintsByParameters,
  recommendedDtype,
  CONTEXT_TOKENS,
  kvCacheBytes,
  RUNTIME_BYTES,
  WEIGHT_DTYPES,
  type DtypeFootprint,
  type ImportPlan,
  type WeightDtype,
} from '../../shared/dtypes.js';
import { parameterCount, type LlavaConfig, type VisionConfig } from '../model/config.js';
import { isQwenCheckpoint, readCheckpoint } from './checkpoint.js';
import { qwenParameterCount, type QwenVLConfig } from '../model/qwen-config.js';
import { ggufSource, readGgufCheckpoint } from './gguf-checkpoint.js';
import { QUANT_BLOCK } from '../onnx/blocks.js';

/**
 * What a pack of a checkpoint takes at each precision, worked out from its config before anything is
 * written: the weight files as import.ts lays them out (one linear per Linear weight, quantized at the
 * pack's width in the decoder and head and at int8 in the vision tower; everything else at the float
 * type), and the memory to answer with it (ONNX Runtime keeps float weights as float32 after folding the
 * fp16 casts, quantized ones packed; plus the KV cache of a long conversation and the runtime's own).
 */

/** Reads the checkpoint folder (validated as an import would, nothing written) and plans its import on this machine. */
export async function planImport(path: string, machineMemoryBytes = totalmem()): Promise<ImportPlan> {
  const gguf = await ggufSource(path);
  const checkpoint = gguf ? await readGgufCheckpoint(gguf.model, gguf.mmproj) : await readCheckpoint(path);
  if (isQwenCheckpoint(checkpoint)) return planByParameters(path, checkpoint.config, machineMemoryBytes);
  const { config, keepDtype } = checkpoint;
  const footprints = packFootprints(config);
  const parameters = parameterCount(config);
  // A GGUF's own precision (what --dtype keep takes) where it fits in half the machine's memory.
  const keepFits = keepDtype && footprints.find((f) => f.dtype === keepDtype)!.memoryBytes <= machineMemoryBytes / 2;
  const recommended = keepFits ? keepDtype : recommendedDtype(footprints, parameters, machineMemoryBytes);
  return { path, parameters, architecture: describeArchitecture(config), footprints, recommended, machineMemoryBytes };
}

/**
 * Qwen2.5-VL: sized from its parameter count (its layers' exact layout is not modelled here): weights at the
 * precision's bytes per parameter, a 4096-token KV cache, and the runtime.
 */
function planByParameters(path: string, config: QwenVLConfig, machineMemoryBytes: number): ImportPlan {
  const parameters = qwenParameterCount(config);
  const { text } = config;
  const kvCache = kvCacheBytes(text.numLayers, text.numKvHeads * text.headDim, CONTEXT_TOKENS.anyres);
  const footprints = footprintsByParameters(parameters, kvCache + RUNTIME_BYTES);
  const architecture = `Qwen2.5-VL: Qwen2.5 ViT (${config.vision.depth} blocks) + Qwen2 (${text.numLayers} layers, hidden ${text.hiddenSize})`;
  return {
    path,
    parameters,
    architecture,
    footprints,
    recommended: recommendedDtype(footprints, parameters, machineMemoryBytes),
    machineMemoryBytes,
  };
}

/** A model card's architecture line. */
export function describeArchitecture({ text, vision, anyres }: LlavaConfig): string {
  if (!vision) return `Llama, text only (${text.numLayers} layers, hidden ${text.hiddenSize})`;
  return `${anyres ? 'LLaVA-NeXT' : 'LLaVA-1.5'}: CLIP ViT (${vision.numLayers} layers) + Llama (${text.numLayers} layers, hidden ${text.hiddenSize})`;
}

export function packFootprints(config: LlavaConfig): DtypeFootprint[] {
  return WEIGHT_DTYPES.map((dtype) => ({ dtype, diskBytes: weightBytes(config, dtype, 'disk'), memoryBytes: memoryBytes(config, dtype) }));
}

function memoryBytes(config: LlavaConfig, dtype: WeightDtype): number {
  const { text } = config;
  const context = config.anyres ? CONTEXT_TOKENS.anyres : CONTEXT_TOKENS.single;
  const kvCache = kvCacheBytes(text.numLayers, text.numKvHeads * text.headDim, context);
  return weightBytes(config, dtype, 'memory') + kvCache + RUNTIME_BYTES;
}

/** The weights' bytes on disk, or in memory once loaded (float weights as float32 there). */
function weightBytes(
  { vision: v, text: t, projectorBias, anyres, visionFeatureLayer }: LlavaConfig,
  dtype: WeightDtype,
  where: 'disk' | 'memory',
): number {
  const textBits = dtype === 'int4' ? 4 : dtype === 'int8' ? 8 : 0;
  const visionBits = textBits ? 8 : 0;
  const floatBytes = where === 'memory' || dtype === 'fp32' ? 4 : 2;
  const floats = (count: number) => count * floatBytes;
  const linear = (inputs: number, outputs: number, bits: number) => {
    if (!bits) return floats(inputs * outputs);
    // MatMulNBits: codes, a float32 scale and packed zero points per block of each output row.
    const blocks = Math.ceil(inputs / QUANT_BLOCK);
    return outputs * ((blocks * QUANT_BLOCK * bits) / 8 + blocks * 4 + Math.ceil((blocks * bits) / 8));
  };

  const vision = v ? visionBytes(v) : 0;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const textLayer =
    linear(t.hiddenSize, q, textBits) +
    2 * linear(t.hiddenSize, kv, textBits) +
    linear(q, t.hiddenSize, textBits) +
    2 * linear(t.hiddenSize, t.intermediateSize, textBits) +
    linear(t.intermediateSize, t.hiddenSize, textBits) +
    floats(2 * t.hiddenSize);
  // The embedding table (float), and the head's own copy of the output projection (tied or not) with the final norm.
  const text =
    floats(t.vocabSize * t.hiddenSize) + t.numLayers * textLayer + linear(t.hiddenSize, t.vocabSize, textBits) + floats(t.hiddenSize);
  return vision + text + (anyres ? floats(t.hiddenSize) : 0);

  /** The CLIP tower up to the layer whose output the projector reads, and the projector. */
  function visionBytes(v: VisionConfig): number {
    const patches = (v.imageSize / v.patchSize) ** 2;
    const visionLayer =
      4 * linear(v.hiddenSize, v.hiddenSize, visionBits) +
      linear(v.hiddenSize, v.intermediateSize, visionBits) +
      linear(v.intermediateSize, v.hiddenSize, visionBits) +
      floats(5 * v.hiddenSize + v.intermediateSize + 4 * v.hiddenSize); // biases, two layer norms
    return (
      floats(v.hiddenSize + v.numChannels * v.patchSize ** 2 * v.hiddenSize + (patches + 1) * v.hiddenSize + 2 * v.hiddenSize) +
      visionFeatureLayer * visionLayer +
      linear(v.hiddenSize, t.hiddenSize, visionBits) +
      linear(t.hiddenSize, t.hiddenSize, visionBits) +
      (projectorBias ? floats(2 * t.hiddenSize) : 0)
    );
  }
}
