import type { ReactNode } from 'react';
import type { AnswerStats, AnswerStatus } from '../../../shared/conversation.js';
import { StatsRow } from '../chat/StatsRow.js';
import { ErrorText } from '../common/ErrorText.js';
import { SplitPanes } from '../common/SplitPanes.js';
import { MethodSelect } from '../settings/methods.js';
import { CompareChart } from './CompareChart.js';
import { diffWords, type DiffSegment } from './diffWords.js';

export type Side = 'left' | 'right';

export interface ComparePane {
  method: string;
  /** The model answering in this pane (an installed model's id); absent: the conversation's. */
  model?: string;
  text: string;
  status: AnswerStatus | 'idle';
  stats?: AnswerStats;
  error?: string;
  /** While it streams without text yet: what the engine is doing. */
  progress?: string;
}

/** The question both panes answer, shown above them while they do. */
export interface ComparedQuestion {
  text: string;
  imageUrl?: string;
}

interface CompareViewProps {
  left: ComparePane;
  right: ComparePane;
  asked?: ComparedQuestion;
  onMethodChange(side: Side, method: string): void;
  /** The installed models a pane can pick (two or more: compare two models as well as two methods). */
  models?: { id: string; name: string }[];
  onModelChange?(side: Side, model: string): void;
  /** Per pane, under its answer (the inspector button). */
  paneActions?(side: Side): ReactNode;
  /** The one input both panes answer (a Composer). */
  composer: ReactNode;
}

/** Two configurations side by side: one question, two answers streaming at once, their stats and where they differ. */
export function CompareView({ left, right, asked, onMethodChange, models, onModelChange, paneActions, composer }: CompareViewProps) {
  const done = left.status === 'done' && right.status === 'done';
  // Two models: the chart names each side's model beside its method.
  const twoModels = left.model !== right.model;
  const chartSide = (p: ComparePane) => ({
    method: p.method,
    model: twoModels ? (models?.find((m) => m.id === p.model)?.name ?? p.model) : undefined,
  });
  const diff = done ? diffWords(left.text, right.text) : undefined;
  const pane = (side: Side, p: ComparePane) => (
    <PaneView
      side={side}
      pane={p}
      segments={diff?.[side]}
      onMethodChange={onMethodChange}
      models={models}
      onModelChange={onModelChange}
      actions={paneActions?.(side)}
    />
  );
  // The question, the chart and the panes scroll together above the composer, so a short window keeps the answers readable.
  return (
    <div className="flex h-full min-w-0 flex-col">
      <div className="flex min-h-0 flex-1 flex-col overflow-y-auto">
        {asked && <AskedQuestion asked={asked} />}
        {left.stats && right.stats ? (
          <CompareChart left={{ ...chartSide(left), stats: left.stats }} right={{ ...chartSide(right), stats: right.stats }} />
        ) : (
          !asked && (
            <p className="border-b border-zinc-200 px-4 py-2 text-sm text-zinc-500 dark:border-zinc-800">
              Attach an image and ask one question; both configurations answer it at the same time.
            </p>
          )
        )}
        <div className="flex min-h-64 flex-1">
          <SplitPanes label="Resize the compare panes" left={pane('left', left)} right={pane('right', right)} />
        </div>
      </div>
      {composer}
    </div>
  );
}

function AskedQuestion({ asked }: { asked: ComparedQuestion }) {
  return (
    <section
      aria-label="Compared question"
      className="flex min-w-0 items-center gap-3 border-b border-zinc-200 px-4 py-2 dark:border-zinc-800"
    >
      {asked.imageUrl && (
        <img src={asked.imageUrl} alt="What both panes answer about" className="h-12 w-12 shrink-0 rounded-md object-cover" />
      )}
      <p className="min-w-0 wrap-anywhere text-sm font-medium">{asked.text}</p>
    </section>
  );
}

interface PaneViewProps {
  side: Side;
  pane: ComparePane;
  segments?: DiffSegment[];
  actions?: ReactNode;
  onMethodChange(side: Side, method: string): void;
  models?: { id: string; name: string }[];
  onModelChange?(side: Side, model: string): void;
}

const PANE_NOTE: Partial<Record<ComparePane['status'], string>> = { interrupted: 'Stopped before the end.' };

function PaneView({ side, pane, segments, actions, onMethodChange, models = [], onModelChange }: PaneViewProps) {
  const id = `compare-method-${side}`;
  const name = side === 'left' ? 'Left' : 'Right';
  const streaming = pane.status === 'streaming';
  return (
    <section
      aria-label={`${name} answer`}
      aria-busy={streaming}
      data-pane={side}
      data-status={pane.status}
      className="flex min-w-0 flex-col gap-2 p-4"
    >
      <div className="flex min-w-0 flex-wrap items-center gap-2">
        <label htmlFor={id} className="shrink-0 text-sm font-medium">
          {name}
        </label>
        <MethodSelect id={id} label={`${name} pane method`} value={pane.method} onChange={(m) => onMethodChange(side, m)} />
        {models.length > 1 && onModelChange && (
          <select
            aria-label={`${name} pane model`}
            value={pane.model ?? models[0].id}
            onChange={(e) => onModelChange(side, e.target.value)}
            className="min-w-32 flex-1 truncate rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm dark:border-zinc-600 dark:bg-zinc-900"
          >
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name}
              </option>
            ))}
          </select>
        )}
      </div>
      {streaming && pane.text === '' && (
        <p role="status" className="text-sm text-zinc-500">
          {pane.progress ?? 'Starting'}…
        </p>
      )}
      <p className="whitespace-pre-wrap wrap-anywhere leading-relaxed" data-testid={`compare-text-${side}`}>
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
        {streaming && <span aria-hidden className="ml-0.5 inline-block h-4 w-2 animate-pulse bg-zinc-400 align-middle" />}
      </p>
      {PANE_NOTE[pane.status] && (
        <p className="text-xs text-amber-600">
          {PANE_NOTE[pane.status]} {pane.error}
        </p>
      )}
      {pane.status === 'error' && <ErrorText message={pane.error} />}
      {pane.stats && <StatsRow stats={pane.stats} />}
      {actions}
    </section>
  );
}
