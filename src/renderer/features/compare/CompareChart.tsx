import type { AnswerStats } from '../../../shared/conversation.js';
import { methodLabel } from '../settings/methods.js';
import { compareMetrics } from './verdict.js';

/** One side: its method, and its model's name when the two sides ran different models. */
interface ChartSide {
  method: string;
  model?: string;
  stats: AnswerStats;
}

interface CompareChartProps {
  left: ChartSide;
  right: ChartSide;
}

const BAR = { left: 'bg-zinc-400 dark:bg-zinc-500', right: 'bg-sky-500' } as const;

/** Speed and compute side by side: a pair of bars per measure, and what the right run gained or lost, in words. */
export function CompareChart({ left, right }: CompareChartProps) {
  const shared = right.stats.sharedLayers ?? left.stats.sharedLayers;
  const name = ({ method, model }: ChartSide) => (model ? `${model} · ${methodLabel(method)}` : methodLabel(method));
  const names = { left: name(left), right: name(right) };
  return (
    <section aria-label="Speed and compute" className="border-b border-zinc-200 px-4 py-2 text-sm dark:border-zinc-800">
      <p className="mb-1 flex flex-wrap items-center gap-x-4 gap-y-1 text-xs text-zinc-500">
        {(['left', 'right'] as const).map((side) => (
          <span key={side} className="inline-flex items-center gap-1">
            <span aria-hidden className={`inline-block h-2.5 w-2.5 rounded-sm ${BAR[side]}`} />
            {side === 'left' ? 'Left' : 'Right'}: <strong className="font-medium text-zinc-800 dark:text-zinc-100">{names[side]}</strong>
          </span>
        ))}
        <span>
          {names.right} against {names.left}
          {shared ? ` · layers 1–${shared} ran once for both (identical before the first pruning layer)` : ''}
        </span>
      </p>
      <div className="grid gap-x-8 gap-y-2 md:grid-cols-2">
        {compareMetrics(left.stats, right.stats).map((m) => {
          const max = Math.max(m.left, m.right) || 1;
          return (
            <div key={m.id} data-metric={m.id} className="grid grid-cols-[minmax(0,1fr)_auto] items-center gap-x-3">
              <span className="text-xs font-medium">{m.label}</span>
              <span data-testid="verdict" className="row-span-3 text-right text-xs font-semibold text-zinc-800 dark:text-zinc-100">
                {m.verdict}
              </span>
              {(['left', 'right'] as const).map((side) => (
                <div
                  key={side}
                  data-side={side}
                  data-value={m[side]}
                  role="img"
                  aria-label={`${names[side]}: ${m.format(m[side])}`}
                  className="flex items-center gap-2"
                >
                  <div className="h-2 min-w-0 flex-1 rounded-sm bg-zinc-100 dark:bg-zinc-800">
                    <div className={`h-full rounded-sm ${BAR[side]}`} style={{ width: `${(m[side] / max) * 100}%` }} />
                  </div>
                  <span className="w-20 shrink-0 font-mono text-xs text-zinc-600 dark:text-zinc-300">{m.format(m[side])}</span>
                </div>
              ))}
            </div>
          );
        })}
      </div>
    </section>
  );
}
