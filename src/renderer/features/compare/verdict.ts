import type { AnswerStats } from '../../../shared/conversation.js';
import { formatMs, formatTflops } from '../common/format.js';

/**
 * How one run compares to another, worded the way people say it: "1.21× faster" or "17% slower" for
 * times (never "0.83× faster"), "59% fewer" or "12% more" for amounts. Within half a percent it is the same.
 */
export function speedVerdict(baseline: number, other: number): string {
  if (!(baseline > 0 && other > 0)) return baseline === other ? 'about the same' : '—';
  const ratio = other / baseline;
  if (ratio < 0.995) return `${(1 / ratio).toFixed(2)}× faster`;
  if (ratio > 1.005) return `${Math.round((ratio - 1) * 100)}% slower`;
  return 'about the same';
}

export function amountVerdict(baseline: number, other: number): string {
  if (baseline === 0) return other === 0 ? 'the same' : 'more';
  const ratio = other / baseline;
  if (ratio < 0.995) return `${Math.round((1 - ratio) * 100)}% fewer`;
  if (ratio > 1.005) return `${Math.round((ratio - 1) * 100)}% more`;
  return 'the same';
}

/** One bar pair of the compare chart. */
export interface CompareMetric {
  id: 'first-token' | 'prefill' | 'compute' | 'visual-tokens';
  label: string;
  left: number;
  right: number;
  format(value: number): string;
  /** The right run against the left one. */
  verdict: string;
}

/** Speed and compute of the right pane's run against the left's: what the chart draws. */
export function compareMetrics(left: AnswerStats, right: AnswerStats): CompareMetric[] {
  const metric = (
    id: CompareMetric['id'],
    label: string,
    pick: (s: AnswerStats) => number,
    format: (v: number) => string,
    verdict: (a: number, b: number) => string,
  ): CompareMetric => ({ id, label, left: pick(left), right: pick(right), format, verdict: verdict(pick(left), pick(right)) });
  return [
    metric('first-token', 'Time to first token', (s) => s.timeToFirstTokenMs, formatMs, speedVerdict),
    metric('prefill', 'Prefill', (s) => s.prefillMs, formatMs, speedVerdict),
    metric('compute', 'Compute (prefill FLOPs)', (s) => s.tflops, formatTflops, amountVerdict),
    metric('visual-tokens', 'Visual tokens kept', (s) => s.visualTokensKept, String, amountVerdict),
  ];
}
