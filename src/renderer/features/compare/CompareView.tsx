import type { ReactNode } from 'react';
import type { AnswerStats, AnswerStatus } from '../../../shared/conversation.js';
import { StatsRow } from '../chat/StatsRow.js';
import { SplitPanes } from '../common/SplitPanes.js';
import { formatRatio } from '../common/format.js';
import { MethodSelect } from '../settings/methods.js';
import { diffWords, type DiffSegment } from './diffWords.js';
import { ErrorText } from '../common/ErrorText.js';

export type Side = 'left' | 'right';

export interface ComparePane {
  method: string;
  text: string;
  status: AnswerStatus | 'idle';
  stats?: AnswerStats;
  error?: string;
}

interface CompareViewProps {
  left: ComparePane;
  right: ComparePane;
  onMethodChange(side: Side, method: string): void;
  /** The one input both panes answer (a Composer). */
  composer: ReactNode;
}

/** How the right pane's run compares to the left's. Speedups above 1 mean the right one was faster. */
export function compareSummary(left: AnswerStats, right: AnswerStats) {
  return {
    prefillSpeedup: left.prefillMs / right.prefillMs,
    firstTokenSpeedup: left.timeToFirstTokenMs / right.timeToFirstTokenMs,
    flopsRatio: right.tflops / left.tflops,
  };
}

/** Two configurations side by side: one question, two streaming answers, their stats and where they differ. */
export function CompareView({ left, right, onMethodChange, composer }: CompareViewProps) {
  const done = left.status === 'done' && right.status === 'done';
  const diff = done ? diffWords(left.text, right.text) : undefined;
  return (
    <div className="flex h-full flex-col">
      <Summary left={left} right={right} />
      <SplitPanes
        label="Resize the compare panes"
        left={<PaneView side="left" pane={left} segments={diff?.left} onMethodChange={onMethodChange} />}
        right={<PaneView side="right" pane={right} segments={diff?.right} onMethodChange={onMethodChange} />}
      />
      {composer}
    </div>
  );
}

function Summary({ left, right }: { left: ComparePane; right: ComparePane }) {
  if (!left.stats || !right.stats) {
    return (
      <p className="border-b border-zinc-200 px-4 py-2 text-sm text-zinc-500 dark:border-zinc-800">
        Ask one question; both configurations answer it.
      </p>
    );
  }
  const s = compareSummary(left.stats, right.stats);
  const shared = right.stats.sharedLayers ?? left.stats.sharedLayers;
  return (
    <div
      role="status"
      aria-label="Comparison"
      className="flex flex-wrap gap-x-6 gap-y-1 border-b border-zinc-200 px-4 py-2 text-sm dark:border-zinc-800"
    >
      <span>
        <strong>{right.method}</strong> vs <strong>{left.method}</strong>
      </span>
      <span data-testid="prefill-speedup">prefill {formatRatio(s.prefillSpeedup)} faster</span>
      <span>first token {formatRatio(s.firstTokenSpeedup)} faster</span>
      <span data-testid="flops-ratio">{formatRatio(s.flopsRatio)} the FLOPs</span>
      {shared ? (
        <span className="text-zinc-500">Layers 1–{shared} ran once for both (identical before the first pruning layer).</span>
      ) : null}
    </div>
  );
}

interface PaneViewProps {
  side: Side;
  pane: ComparePane;
  segments?: DiffSegment[];
  onMethodChange(side: Side, method: string): void;
}

function PaneView({ side, pane, segments, onMethodChange }: PaneViewProps) {
  const id = `compare-method-${side}`;
  return (
    <section
      aria-label={`${side === 'left' ? 'Left' : 'Right'} answer`}
      aria-busy={pane.status === 'streaming'}
      className="flex flex-col gap-2 p-4"
    >
      <div className="flex items-center gap-2">
        <label htmlFor={id} className="text-sm font-medium">
          {side === 'left' ? 'Left' : 'Right'}
        </label>
        <MethodSelect
          id={id}
          label={`${side === 'left' ? 'Left' : 'Right'} pane method`}
          value={pane.method}
          onChange={(m) => onMethodChange(side, m)}
        />
      </div>
      <p className="whitespace-pre-wrap leading-relaxed" data-testid={`compare-text-${side}`}>
        {segments
          ? segments.map((s, i) =>
              s.changed ? (
                <mark
                  // biome-ignore lint/suspicious/noArrayIndexKey: the segments of one diff, rendered in order and never reordered
                  key={i}
                  className={
                    side === 'left'
                      ? 'bg-rose-200 dark:bg-rose-900/60 dark:text-rose-50'
                      : 'bg-emerald-200 dark:bg-emerald-900/60 dark:text-emerald-50'
                  }
                >
                  {s.text}
                </mark>
              ) : (
                // biome-ignore lint/suspicious/noArrayIndexKey: the segments of one diff, rendered in order and never reordered
                <span key={i}>{s.text}</span>
              ),
            )
          : pane.text}
      </p>
      <ErrorText message={pane.error} />
      {pane.stats && <StatsRow stats={pane.stats} />}
    </section>
  );
}
