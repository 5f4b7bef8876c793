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
