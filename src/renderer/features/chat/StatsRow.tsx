import type { AnswerStats } from '../../../shared/conversation.js';
import { formatCompute, formatMs, formatRate, formatTflops } from '../common/format.js';

export interface StatItem {
  label: string;
  value: string;
  /** Longer explanation, shown as a tooltip and read by screen readers. */
  hint: string;
}

/** The numbers under an answer, in reading order. */
export function statItems(stats: AnswerStats): StatItem[] {
  const items: StatItem[] = [
    {
      label: 'first token',
      value: formatMs(stats.timeToFirstTokenMs),
      hint:
        stats.imageEncodeMs === undefined
          ? 'Time to first token'
          : `Time to first token, including ${formatMs(stats.imageEncodeMs)} of image encoding`,
    },
    { label: 'prefill', value: formatMs(stats.prefillMs), hint: 'Prompt prefill through the decoder' },
    { label: 'decode', value: formatRate(stats.decodeTokensPerSec), hint: `${stats.generatedTokens} tokens generated` },
    {
      label: 'visual tokens',
      value: stats.visualTokensTotal === 0 ? 'none (text only)' : `${stats.visualTokensKept} of ${stats.visualTokensTotal}`,
      hint: 'Visual tokens left after the last pruning layer, of those the vision tower produced',
    },
    {
      label: 'compute',
      // Without an image there is no visual-token compute to count (the figure covers the visual tokens only).
      value: stats.visualTokensTotal === 0 ? 'none (text only)' : formatCompute(stats.tflops, stats.tflopsUnpruned),
      hint: `Prefill compute of the decoder layers over the visual tokens (the TransPrune paper's count, as the inspector shows it), and its share of the ${formatTflops(stats.tflopsUnpruned)} an unpruned run needs`,
    },
    { label: 'on', value: stats.executionProvider, hint: 'Execution provider' },
  ];
  if (stats.sharedLayers) {
    items.push({
      label: 'shared',
      value: `layers 1–${stats.sharedLayers}`,
      hint: 'Early layers computed once and reused from the other pane',
    });
  }
  return items;
}

export function StatsRow({ stats }: { stats: AnswerStats }) {
  return (
    <dl className="flex flex-wrap gap-x-4 gap-y-1 text-xs text-zinc-500 dark:text-zinc-400" aria-label="Answer statistics">
      {statItems(stats).map((item) => (
        <div key={item.label} title={item.hint} className="flex gap-1">
          <dt>{item.label}</dt>
          <dd className="font-mono text-zinc-700 dark:text-zinc-200">{item.value}</dd>
        </div>
      ))}
    </dl>
  );
}
