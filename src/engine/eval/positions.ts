import type { Trace } from '../../shared/trace.js';

/**
 * Where in the image a method's kept visual tokens sit: for each answer, the rows of the patch grid
 * of the tokens that survive the last pruning stage, summed over a split. Attention-ranked methods
 * lean towards the last rows (the tokens nearest the question in the sequence: the positional bias
 * the TransPrune paper observes); a random selection is flat; objects sit anywhere.
 */
export interface RowHistogram {
  /** Kept tokens per grid row (row 0 at the top), summed over the answers. */
  rows: number[];
  answers: number;
}

export function emptyHistogram(gridRows: number): RowHistogram {
  return { rows: new Array<number>(gridRows).fill(0), answers: 0 };
}

/** Adds the final kept set of one traced answer (every token when nothing was pruned). */
export function addKeptRows(histogram: RowHistogram, trace: Trace): void {
  const grid = trace.image?.grid;
  if (!grid) return;
  const last = trace.layers.findLast((l) => l.kept !== undefined);
  const kept = last?.kept ?? trace.projectorKept ?? Array.from({ length: trace.prompt.visualTokens }, (_, i) => i);
  for (const index of kept) histogram.rows[Math.floor(index / grid.cols)]++;
  histogram.answers++;
}

/** Share of the kept tokens in each row, and the mean row (0-based; (rows - 1) / 2 when flat). */
export function rowShares(histogram: RowHistogram): { shares: number[]; meanRow: number } {
  const total = histogram.rows.reduce((a, b) => a + b, 0);
  const shares = histogram.rows.map((n) => (total > 0 ? n / total : 0));
  return { shares, meanRow: shares.reduce((sum, share, row) => sum + share * row, 0) };
}
