import { formatScore } from '../common/format.js';
import { heatColor, normalise } from '../common/heatColor.js';
import { TokenMap } from './TokenMap.js';
import { SCORE_KINDS, scoreNames, type TraceView } from './traceView.js';

interface ScoreHeatmapsProps {
  view: TraceView;
  imageUrl?: string;
  highlighted: number | null;
  onHighlight(patch: number | null): void;
}

/** One row per pruning layer: a heatmap of each score the method recorded (TTV, IGA and combined; or attention) over the patch grid. */
export function ScoreHeatmaps({ view, imageUrl, highlighted, onHighlight }: ScoreHeatmapsProps) {
  if (view.steps.length === 0) return <p className="text-sm text-zinc-500">This method pruned nothing, so there are no scores to show.</p>;
  const names = scoreNames(view.methodKind);
  return (
    <div className="space-y-4">
      {view.steps.map((step) => (
        <section key={step.layer} aria-label={`Scores at pruning layer ${step.layer + 1}`}>
          <h4 className="mb-1 text-sm font-medium">
            After layer {step.layer + 1}: {step.before} → {step.kept.length} tokens
          </h4>
          <div className="flex flex-wrap gap-3">
            {SCORE_KINDS.filter((kind) => step.scores[kind]).map((kind) =>
              view.layout ? (
                <TiledHeatmap
                  key={kind}
                  title={names[kind].title}
                  view={view}
                  imageUrl={imageUrl}
                  values={step.scores[kind]!}
                  highlighted={highlighted}
                  onHighlight={onHighlight}
                />
              ) : (
                <HeatGrid
                  key={kind}
                  title={names[kind].title}
                  view={view}
                  values={step.scores[kind]!}
                  highlighted={highlighted}
                  onHighlight={onHighlight}
                />
              ),
            )}
          </div>
        </section>
      ))}
    </div>
  );
}

/** A heatmap over the tiles as they lie in the original image (LLaVA-NeXT). */
function TiledHeatmap({ title, view, imageUrl, values, highlighted, onHighlight }: HeatGridProps & { imageUrl?: string }) {
  const scaled = normalise(values);
  return (
    <div className="w-56">
      <TokenMap
        compact
        layout={view.layout!}
        imageUrl={imageUrl}
        fill={(patch) => (scaled[patch] === null ? undefined : heatColor(scaled[patch]!))}
        highlighted={highlighted}
        onHighlight={onHighlight}
        label={`${title} heatmap`}
      />
      <ColourScale values={values} />
    </div>
  );
}

interface HeatGridProps {
  title: string;
  view: TraceView;
  values: (number | null)[];
  highlighted: number | null;
  onHighlight(patch: number | null): void;
}

function HeatGrid({ title, view, values, highlighted, onHighlight }: HeatGridProps) {
  const scaled = normalise(values);
  return (
    <figure className="w-36">
      <div
        role="img"
        aria-label={`${title} heatmap`}
        className="grid aspect-square w-full overflow-hidden rounded"
        style={{ gridTemplateColumns: `repeat(${view.grid.cols}, 1fr)` }}
        onMouseLeave={() => onHighlight(null)}
      >
        {scaled.map((t, patch) => (
          // biome-ignore lint/a11y/noStaticElementInteractions: hover highlighting for the mouse; the patch grid's arrow keys do the same
          <div
            // biome-ignore lint/suspicious/noArrayIndexKey: the index is the patch's grid position, its identity
            key={patch}
            onMouseEnter={() => onHighlight(patch)}
            style={{ background: t === null ? 'transparent' : heatColor(t) }}
            className={patch === highlighted ? 'outline outline-1 outline-white' : ''}
          />
        ))}
      </div>
      <ColourScale values={values} />
      <figcaption className="mt-1 text-xs text-zinc-500">{title}</figcaption>
    </figure>
  );
}

/** The heatmap's key: the colour ramp from its lowest to its highest score (empty cells are tokens already dropped). */
function ColourScale({ values }: { values: (number | null)[] }) {
  const present = values.filter((v): v is number => v !== null);
  const low = formatScore(Math.min(...present));
  const high = formatScore(Math.max(...present));
  const ramp = Array.from({ length: 11 }, (_, i) => heatColor(i / 10)).join(', ');
  return (
    <div role="img" aria-label={`Colour scale from ${low} (lowest) to ${high} (highest)`} className="mt-1">
      <div className="h-2 rounded-sm" style={{ background: `linear-gradient(to right, ${ramp})` }} />
      <div className="flex justify-between font-mono text-[10px] text-zinc-500">
        <span>{low}</span>
        <span>{high}</span>
      </div>
    </div>
  );
}
