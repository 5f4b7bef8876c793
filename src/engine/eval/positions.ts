import { baseCell, type Trace } from '../../shared/trace.js';

/**
 * Where in the image a method's kept visual tokens sit: for each answer, the grid indices of the
 * tokens that survive the last pruning stage, counted over a split. The TransPrune paper (method spec
 * §7.2) observes that attention-ranked selection (IGA, FastV) favours the first and last rows of the
 * visual sequence while TTV spreads over the image; a random selection is flat.
 */
export interface KeptPositions {
  /** How often each original grid index was kept, summed over the answers. */
  counts: number[];
  gridCols: number;
  answers: number;
}

export interface PositionStats {
  /** Share of the kept tokens per grid row (row 0 at the top). */
  rowShares: number[];
  /** Share of the kept tokens in the first and the last grid row. */
  edgeRowShare: number;
  /** Entropy of the kept-index distribution relative to uniform over the grid (1 = flat). */
  relativeEntropy: number;
  /** Distance of the kept tokens' centroid from the grid centre, in patches. */
  centroidOffset: number;
}

export function emptyPositions(grid: { rows: number; cols: number }): KeptPositions {
  return { counts: new Array<number>(grid.rows * grid.cols).fill(0), gridCols: grid.cols, answers: 0 };
}

/** Adds the final kept set of one traced answer (every token when nothing was pruned). */
export function addKept(positions: KeptPositions, trace: Trace): void {
  const last = trace.layers.findLast((l) => l.kept !== undefined);
  const kept = last?.kept ?? trace.projectorKept ?? Array.from({ length: trace.prompt.visualTokens }, (_, i) => i);
  for (const index of kept) {
    // LLaVA-NeXT: a tile patch counts in the base-grid cell its centre lies in; newlines do not count.
    const cell = trace.image ? baseCell(trace.image, index) : index;
    if (cell !== null) positions.counts[onCountGrid(positions, cell, trace.image?.grid)]++;
  }
  positions.answers++;
}

/**
 * A cell of the trace's grid on the counts' grid. Qwen2.5-VL gives every image its own grid: a token counts in the
 * cell at the same place relative to the image (its centre's).
 */
function onCountGrid(positions: KeptPositions, cell: number, grid?: { rows: number; cols: number }): number {
  const rows = positions.counts.length / positions.gridCols;
  if (!grid || (grid.rows === rows && grid.cols === positions.gridCols)) return cell;
  const at = (i: number, from: number, to: number) => Math.floor(((i + 0.5) * to) / from);
  return at(Math.floor(cell / grid.cols), grid.rows, rows) * positions.gridCols + at(cell % grid.cols, grid.cols, positions.gridCols);
}

export function positionStats({ counts, gridCols }: KeptPositions): PositionStats {
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  const rows = counts.length / gridCols;
  const rowShares = Array.from(
    { length: rows },
    (_, r) => counts.slice(r * gridCols, (r + 1) * gridCols).reduce((a, b) => a + b, 0) / total,
  );
  let entropy = 0;
  let row = 0;
  let col = 0;
  counts.forEach((n, i) => {
    const p = n / total;
    if (p > 0) entropy -= p * Math.log(p);
    row += p * Math.floor(i / gridCols);
    col += p * (i % gridCols);
  });
  return {
    rowShares,
    edgeRowShare: rowShares[0] + rowShares[rows - 1],
    relativeEntropy: entropy / Math.log(counts.length),
    centroidOffset: Math.hypot(row - (rows - 1) / 2, col - (gridCols - 1) / 2),
  };
}
