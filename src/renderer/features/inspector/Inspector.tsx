import { useMemo, useState, type ReactNode } from 'react';
import { EChart } from '../common/EChart.js';
import { formatCompute, formatScore } from '../common/format.js';
import { methodLabel } from '../settings/methods.js';
import { histogramOption, layerChartOption, layerFlopsUnit } from './charts.js';
import { Explainer, ThisAnswer } from './Explainer.js';
import { renderOverlayPng } from './overlayPng.js';
import { PatchOverlay } from './PatchOverlay.js';
import { ScoreHeatmaps } from './ScoreHeatmaps.js';
import { TokenMap } from './TokenMap.js';
import {
  describeToken,
  droppedAfter,
  patchScores,
  positionHistogram,
  presentAt,
  scoreNames,
  type ScoreKind,
  type TraceView,
} from './traceView.js';

/** How pruned tokens are dimmed over the image. */
export const PRUNED_FILL = 'rgba(9, 9, 11, 0.7)';

export type TraceExportFormat = 'json' | 'csv';

interface InspectorProps {
  view: TraceView;
  imageUrl?: string;
  /** The question this trace answers, when the caller knows it (a trace file does not carry it). */
  question?: string;
  /** Each export resolves with where the file went ("Saved to …", "Downloaded …"), or undefined when cancelled. */
  onExportTrace?(format: TraceExportFormat): Promise<string | undefined>;
  /** `layer`: the 1-based layer the overlay shows. */
  onExportOverlay?(png: Uint8Array, layer: number): Promise<string | undefined>;
  /** Ends the toolbar (the dialog's close button). */
  toolbarEnd?: ReactNode;
}

/** The layer-by-layer view of one answer's pruning trace, its exports in a toolbar at the top. */
export function Inspector({ view, imageUrl, question, onExportTrace, onExportOverlay, toolbarEnd }: InspectorProps) {
  const [layer, setLayer] = useState(view.numLayers - 1);
  const [highlighted, setHighlighted] = useState<number | null>(null);
  const dropped = useMemo(() => droppedAfter(view), [view]);
  const present = useMemo(() => presentAt(dropped, layer), [dropped, layer]);
  const keptCount = present.filter(Boolean).length;
  const total = view.visualTokens;
  const layerChart = useMemo(() => layerChartOption(view, layer), [view, layer]);
  const histogram = useMemo(() => histogramOption(positionHistogram(view, present)), [view, present]);

  return (
    <div className="flex min-w-0 flex-col gap-6">
      <header
        role="toolbar"
        aria-label="Inspector actions"
        className="sticky top-0 z-10 flex flex-wrap items-center gap-x-4 gap-y-2 border-b border-zinc-200 bg-white px-4 py-2 dark:border-zinc-800 dark:bg-zinc-950"
      >
        <div className="flex min-w-0 flex-1 basis-96 flex-wrap items-baseline gap-x-3">
          <h2 className="text-lg font-semibold">Pruning inspector</h2>
          <span className="text-sm text-zinc-500">
            {methodLabel(view.method)} · {view.numLayers} layers · {total} visual tokens · compute{' '}
            <span data-testid="inspector-compute">{formatCompute(view.tflops, view.tflopsUnpruned)}</span>
          </span>
        </div>
        <ExportBar
          onExportTrace={onExportTrace}
          onExportOverlay={
            onExportOverlay && (() => renderOverlayPng(view, present, layer, imageUrl).then((png) => onExportOverlay(png, layer + 1)))
          }
        />
        {toolbarEnd}
      </header>

      <div className="flex flex-col gap-6 px-4 pb-4">
        <ThisAnswer question={question} answer={view.answer} />

        <div className="flex flex-col gap-2">
          <label htmlFor="inspector-layer" className="text-sm font-medium">
            Layer <output data-testid="inspector-layer">{layer + 1}</output> of {view.numLayers}:{' '}
            <output data-testid="inspector-kept">{keptCount}</output> of {total} visual tokens kept
          </label>
          <input
            id="inspector-layer"
            type="range"
            min={0}
            max={view.numLayers - 1}
            value={layer}
            onChange={(e) => setLayer(Number(e.target.value))}
            aria-label="Layer"
            aria-valuetext={`Layer ${layer + 1}: ${keptCount} of ${total} tokens kept`}
            className="w-full accent-sky-600"
          />
        </div>

        <div className="grid gap-6 lg:grid-cols-[minmax(0,28rem)_1fr]">
          <div className="flex min-w-0 flex-col gap-2">
            {view.layout ? (
              <TokenMap
                layout={view.layout}
                imageUrl={imageUrl}
                fill={(patch) => (present[patch] ? undefined : PRUNED_FILL)}
                present={present}
                highlighted={highlighted}
                onHighlight={setHighlighted}
                label={`${total} visual tokens over the original image and the base view. Arrow keys move between tokens.`}
              />
            ) : (
              <PatchOverlay view={view} imageUrl={imageUrl} present={present} highlighted={highlighted} onHighlight={setHighlighted} />
            )}
            <PatchLegend layer={layer} />
            <PatchCard view={view} patch={highlighted} dropped={dropped} />
          </div>
          <div className="flex min-w-0 flex-col gap-4">
            <Explainer view={view} />
            <ChartFigure title="Visual tokens and compute per layer">
              <EChart label={`Visual tokens and ${layerFlopsUnit(view).unit} per layer; layer ${layer + 1} selected`} option={layerChart} />
            </ChartFigure>
            <ChartFigure title={`Kept patches by row and by column at layer ${layer + 1}`}>
              <EChart label={`Kept patches by grid row and column at layer ${layer + 1}`} option={histogram} height={200} />
            </ChartFigure>
          </div>
        </div>

        <section aria-label="Score heatmaps">
          <h3 className="mb-2 font-medium">Scores at each pruning layer</h3>
          <ScoreHeatmaps view={view} imageUrl={imageUrl} highlighted={highlighted} onHighlight={setHighlighted} />
        </section>
      </div>
    </div>
  );
}

/** What the overlay's shading means, each swatch a small patch drawn the way the overlay draws it (not a box to tick). */
function PatchLegend({ layer }: { layer: number }) {
  // A patch of picture: the same pattern under each swatch, so only the shading or the outline differs.
  const picture =
    'relative inline-block h-3.5 w-5 overflow-hidden rounded-[2px] bg-gradient-to-br from-emerald-400 via-sky-400 to-rose-400';
  return (
    <ul aria-label="Patch legend" className="flex flex-wrap gap-x-4 gap-y-1 text-xs text-zinc-600 dark:text-zinc-300">
      <li className="flex items-center gap-1.5">
        <span aria-hidden data-swatch="kept" className={picture} /> kept: still read by layer {layer + 1}
      </li>
      <li className="flex items-center gap-1.5">
        <span aria-hidden data-swatch="pruned" className={picture}>
          <span className="absolute inset-0" style={{ background: PRUNED_FILL }} />
        </span>{' '}
        pruned before layer {layer + 1}
      </li>
      <li className="flex items-center gap-1.5">
        <span aria-hidden data-swatch="pointer" className={`${picture} outline-2 outline-amber-400`} /> the patch under the pointer
      </li>
    </ul>
  );
}

/** A chart with a visible title above it. */
function ChartFigure({ title, children }: { title: string; children: ReactNode }) {
  return (
    <figure aria-label={title} className="flex flex-col gap-1">
      <figcaption className="text-sm font-medium">{title}</figcaption>
      {children}
    </figure>
  );
}

function PatchCard({ view, patch, dropped }: { view: TraceView; patch: number | null; dropped: (number | null)[] }) {
  if (patch === null)
    return <p className="text-sm text-zinc-500">Hover a patch (or focus the grid and use the arrow keys) to see its scores.</p>;
  const droppedLayer = dropped[patch];
  const names = scoreNames(view.methodKind);
  return (
    <div role="status" data-testid="patch-card" className="rounded-lg border border-zinc-200 p-3 text-sm dark:border-zinc-700">
      <p className="font-medium">
        {describeToken(view, patch)}: {droppedLayer === null ? 'kept to the last layer' : `dropped after layer ${droppedLayer + 1}`}
      </p>
      <ul className="mt-1 space-y-0.5 text-zinc-600 dark:text-zinc-300">
        {patchScores(view, patch).map(({ layer, scores }) => (
          <li key={layer}>
            layer {layer + 1}:{' '}
            {Object.entries(scores)
              .map(
                ([kind, { value, rank, of }]) =>
                  `${names[kind as ScoreKind].short} ${formatScore(value)} · rank ${rank} of ${of} (top ${Math.ceil((rank / of) * 100)}%)`,
              )
              .join('; ')}
          </li>
        ))}
      </ul>
    </div>
  );
}

interface ExportBarProps {
  onExportTrace?(format: TraceExportFormat): Promise<string | undefined>;
  onExportOverlay?(): Promise<string | undefined>;
}

/** The exports, each saying where its file went (or why it failed). */
function ExportBar({ onExportTrace, onExportOverlay }: ExportBarProps) {
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const run = (label: string, work: () => Promise<string | undefined>) => async () => {
    setMessage(null);
    try {
      const where = await work();
      setMessage(where ? { text: where, error: false } : null);
    } catch (err) {
      setMessage({ text: `${label} export failed: ${(err as Error).message}`, error: true });
    }
  };
  const exports = [
    { label: 'Trace JSON', text: 'Export trace JSON', work: onExportTrace && (() => onExportTrace('json')) },
    { label: 'Trace CSV', text: 'Export trace CSV', work: onExportTrace && (() => onExportTrace('csv')) },
    { label: 'Overlay PNG', text: 'Export overlay PNG', work: onExportOverlay },
  ];
  const button =
    'rounded-md border border-zinc-300 px-2.5 py-1 text-sm hover:bg-zinc-100 disabled:opacity-50 dark:border-zinc-600 dark:hover:bg-zinc-800';
  return (
    <div className="flex flex-wrap items-center gap-2">
      {exports.map(({ label, text, work }) => (
        <button key={label} type="button" className={button} disabled={!work} onClick={work && run(label, work)}>
          {text}
        </button>
      ))}
      {message && (
        <span
          role={message.error ? 'alert' : 'status'}
          className={`basis-full text-sm ${message.error ? 'text-red-600' : 'text-emerald-700 dark:text-emerald-400'}`}
        >
          {message.text}
        </span>
      )}
    </div>
  );
}
