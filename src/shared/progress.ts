import { z } from 'zod';

/**
 * How far a long task has got (an import, a download, a self-test): `done` of `total` (a total of 0:
 * not known yet), and what it is doing now. The one progress shape, from the engine to the progress bar.
 */
export const Progress = z.object({ done: z.number().nonnegative(), total: z.number().nonnegative(), message: z.string().optional() });
export type Progress = z.infer<typeof Progress>;
