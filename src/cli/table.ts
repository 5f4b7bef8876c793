/** Tables on the terminal: benchmarks, `compare`, `flops`. */

export type Cell = string | number;

/** Prints rows as an aligned table; numbers get `digits` decimals. */
export function printTable(headers: string[], rows: Cell[][], digits = 2): void {
  const text = rows.map((row) => row.map((c) => (typeof c === 'number' ? formatNumber(c, digits) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of text) console.log(line(row));
}

function formatNumber(n: number, digits: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 1000 ? n.toFixed(0) : n.toFixed(digits);
}
