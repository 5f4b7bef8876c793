import { useMemo, useState } from 'react';
import { EChart } from '../common/EChart.js';
import { formatCompute, formatScore } from '../common/format.js';
import { histogramOption, layerChartOption, layerFlopsUnit } from './charts.js';
import { renderOverlayPng } from './overlayPng.js';
import { PatchOverlay } from './PatchOverlay.js';
import { ScoreHeatmaps } from './ScoreHeatmaps.js';
import { TokenMap } from './TokenMap.js';
import { describeToken, droppedAfter, patchScores, positionHistogram, presentAt, type TraceView } from './traceView.js';

/** How pruned tokens are dimmed over the image. */
export const PRUNED_FILL = 'rgba(9, 9, 11, 0.7)';

export type TraceExportFormat = 'json' | 'csv';

interface InspectorProps {
  view: TraceView;
  imageUrl?: string;
  onExportTrace?(format: TraceExportFormat): Promise<void>;
  onExportOverlay?(png: Uint8Array): Promise<void>;
}

/** The layer-by-layer view of one answer's pruning trace. */
export function Inspector({ view, imageUrl, onExportTrace, onExportOverlay }: InspectorProps) {
  const [layer, setLayer] = useState(view.numLayers - 1);
  const [highlighted, setHighlighted] = useState<number | null>(null);
  const dropped = useMemo(() => droppedAfter(view), [view]);
  const present = useMemo(() => presentAt(dropped, layer), [dropped, layer]);
  const keptCount = present.filter(Boolean).length;
  const total = view.visualTokens;
  const layerChart = useMemo(() => layerChartOption(view, layer), [view, layer]);
  const histogram = useMemo(() => histogramOption(positionHistogram(view, present)), [view, present]);

  return (
    <div className="flex flex-col gap-6 p-4">
      <header className="flex flex-wrap items-baseline gap-x-6 gap-y-1">
        <h2 className="text-lg font-semibold">Pruning inspector</h2>
        <span className="text-sm text-zinc-500">
          {view.method} · {view.numLayers} layers · {total} visual tokens · compute{' '}
          <span data-testid="inspector-compute">{formatCompute(view.tflops, view.tflopsUnpruned)}</span>
        </span>
      </header>

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
          aria-valuetext={`Layer ${layer + 1}: ${keptCount} of ${total} tokens kept`}
          className="w-full accent-sky-600"
        />
      </div>

      <div className="grid gap-6 lg:grid-cols-[minmax(0,28rem)_1fr]">
        <div className="flex flex-col gap-2">
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
          <PatchCard view={view} patch={highlighted} dropped={dropped} />
        </div>
        <div className="flex min-w-0 flex-col gap-4">
          <EChart label={`Visual tokens and ${layerFlopsUnit(view).unit} per layer; layer ${layer + 1} selected`} option={layerChart} />
          <EChart label={`Kept patches by grid row and column at layer ${layer + 1}`} option={histogram} height={180} />
        </div>
      </div>

      <section aria-label="Score heatmaps">
        <h3 className="mb-2 font-medium">Scores at each pruning layer</h3>
        <ScoreHeatmaps view={view} imageUrl={imageUrl} highlighted={highlighted} onHighlight={setHighlighted} />
      </section>

      <ExportBar
        onExportTrace={onExportTrace}
        onExportOverlay={onExportOverlay && (() => renderOverlayPng(view, present, imageUrl).then(onExportOverlay))}
      />
    </div>
  );
}

function PatchCard({ view, patch, dropped }: { view: TraceView; patch: number | null; dropped: (number | null)[] }) {
  if (patch === null)
    return <p className="text-sm text-zinc-500">Hover a patch (or focus the grid and use the arrow keys) to see its scores.</p>;
  const droppedLayer = dropped[patch];
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
              .map(([kind, value]) => `${kind.toUpperCase()} ${formatScore(value)}`)
              .join(' · ')}
          </li>
        ))}
      </ul>
    </div>
  );
}

interface ExportBarProps {
  onExportTrace?(format: TraceExportFormat): Promise<void>;
  onExportOverlay?(): Promise<void>;
}

function ExportBar({ onExportTrace, onExportOverlay }: ExportBarProps) {
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const run = (label: string, work: () => Promise<void>) => async () => {
    setMessage(null);
    try {
      await work();
      setMessage({ text: `${label} exported.`, error: false });
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
    'rounded-md border border-zinc-300 px-3 py-1.5 text-sm hover:bg-zinc-100 disabled:opacity-50 dark:border-zinc-600 dark:hover:bg-zinc-800';
  return (
    <div className="flex flex-wrap items-center gap-2">
      {exports.map(({ label, text, work }) => (
        <button key={label} type="button" className={button} disabled={!work} onClick={work && run(label, work)}>
          {text}
        </button>
      ))}
      {message && (
        <span role={message.error ? 'alert' : 'status'} className={message.error ? 'text-sm text-red-600' : 'text-sm text-emerald-600'}>
          {message.text}
        </span>
      )}
    </div>
  );
}
