import { z } from 'zod';

/**
 * The precisions a checkpoint is imported at (a pack's weight dtype), most compact first: the one list
 * the CLI's --dtype, the Models view's choice and the import calls' schemas take. int4/int8: the
 * decoder's and head's linears block-quantized at that width, the vision tower's at int8, the rest fp16.
 */
export const WEIGHT_DTYPES = ['int4', 'int8', 'fp16', 'fp32'] as const;
export const WeightDtype = z.enum(WEIGHT_DTYPES);
export type WeightDtype = z.infer<typeof WeightDtype>;

/** What an import at one precision costs: its pack on disk and the memory needed to answer with it. */
export const DtypeFootprint = z.object({
  dtype: WeightDtype,
  diskBytes: z.number().nonnegative(),
  memoryBytes: z.number().nonnegative(),
});
export type DtypeFootprint = z.infer<typeof DtypeFootprint>;

/** A checkpoint folder read before anything is written: its size at every precision and the one this machine should use. */
export const ImportPlan = z.object({
  path: z.string(),
  parameters: z.number().int().nonnegative(),
  architecture: z.string(),
  footprints: z.array(DtypeFootprint),
  recommended: WeightDtype,
  machineMemoryBytes: z.number().nonnegative(),
});
export type ImportPlan = z.infer<typeof ImportPlan>;

/**
 * The precision to offer first on a machine with `machineMemory` bytes: fp32 for a small model, else int8
 * (close to fp32 in quality, faster on a CPU), else int4, the first whose memory fits in half the machine's
 * (the rest is the system's and the app's). fp16 is never the default: ONNX Runtime on a CPU expands it to
 * float32, so it costs fp32's memory. A model too large even at int4 still gets int4.
 */
export function recommendedDtype(footprints: DtypeFootprint[], parameters: number, machineMemory: number): WeightDtype {
  const order: WeightDtype[] = parameters < 1e9 ? ['fp32', 'int8', 'int4'] : ['int8', 'int4'];
  const fits = (dtype: WeightDtype) => footprints.find((f) => f.dtype === dtype)!.memoryBytes <= machineMemory / 2;
  return order.find(fits) ?? 'int4';
}

/** ONNX Runtime, the sessions' activations and Node itself, measured loosely on the tiny and 7B packs. */
export const RUNTIME_BYTES = 512 * 1024 ** 2;
/** Tokens the KV cache is sized for: a LLaVA-1.5 image and a conversation; LLaVA-NeXT's views take up to ~2900. */
export const CONTEXT_TOKENS = { single: 2048, anyres: 4096 };

/** A float32 KV cache of `tokens` over `layers` layers of `kvWidth` (key/value heads x head size). */
export function kvCacheBytes(layers: number, kvWidth: number, tokens: number): number {
  return 2 * layers * kvWidth * tokens * 4;
}

/** Bytes per parameter of a pack at each precision, on disk and loaded (block-quantized linears carry their scales). */
const BYTES_PER_PARAMETER: Record<WeightDtype, { disk: number; memory: number }> = {
  int4: { disk: 0.57, memory: 0.57 },
  int8: { disk: 1.08, memory: 1.08 },
  fp16: { disk: 2, memory: 4 },
  fp32: { disk: 4, memory: 4 },
};

/**
 * A model's footprint at each precision from its parameter count alone (where its exact layout is not read:
 * Qwen2.5-VL, a catalogue entry not yet downloaded): the weights plus `overheadBytes` of KV cache and runtime.
 */
export function footprintsByParameters(parameters: number, overheadBytes: number): DtypeFootprint[] {
  return WEIGHT_DTYPES.map((dtype) => ({
    dtype,
    diskBytes: parameters * BYTES_PER_PARAMETER[dtype].disk,
    memoryBytes: parameters * BYTES_PER_PARAMETER[dtype].memory + overheadBytes,
  }));
}
