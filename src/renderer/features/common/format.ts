export { formatBytes, formatParameters } from '../../../shared/units.js';
import { flopsUnit as sharedFlopsUnit, formatFlops, formatFlopsShare } from '../../../shared/compute.js';

/** Number formatting shared by the stats rows, compare header and inspector. */

export function formatMs(ms: number): string {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.round(ms)} ms`;
}

export function formatRate(perSec: number): string {
  return `${perSec >= 100 ? Math.round(perSec) : perSec.toFixed(1)} tok/s`;
}

// Compute arrives in TFLOPs (AnswerStats, trace views) and is printed the one shared way (src/shared/compute.ts).

/** The unit compute of this size reads best in, and how many of it make one TFLOP (chart axes). */
export function flopsUnit(tflops: number): { unit: ReturnType<typeof sharedFlopsUnit>['unit']; perTflop: number } {
  const { unit, scale } = sharedFlopsUnit(tflops * 1e12);
  return { unit, perTflop: 1e12 / scale };
}

export function formatTflops(tflops: number): string {
  return formatFlops(tflops * 1e12);
}

/** An answer's prefill compute and its share of the unpruned run's, as the chat stats and the inspector show it. */
export function formatCompute(tflops: number, tflopsUnpruned: number): string {
  return formatFlopsShare(tflops * 1e12, tflopsUnpruned * 1e12);
}

export function formatPercent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(2)}×`;
}

/** A score in the hover card: fixed digits for mid-range values, exponent for tiny ones. */
export function formatScore(value: number): string {
  return value !== 0 && Math.abs(value) < 1e-3 ? value.toExponential(2) : value.toFixed(4);
}

/** A moment today, as the user's clock shows it: "14:05" or "2:05 PM". */
export function formatTimeOfDay(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
