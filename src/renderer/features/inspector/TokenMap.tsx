import type { CSSProperties, KeyboardEvent } from 'react';
import type { FractionRect, TiledLayout } from './traceView.js';

interface TokenMapProps {
  layout: TiledLayout;
  imageUrl?: string;
  /** Each token's cell colour (undefined: clear, the image shows through). */
  fill(patch: number): string | undefined;
  /** Whether each token is still in the sequence (for the cells' data-kept). */
  present?: boolean[];
  highlighted: number | null;
  onHighlight(patch: number | null): void;
  /** Heatmap thumbnails: the original image only, without the base view and the keyboard. */
  compact?: boolean;
  label: string;
}

const place = (r: FractionRect): CSSProperties => ({
  left: `${r.x * 100}%`,
  top: `${r.y * 100}%`,
  width: `${r.width * 100}%`,
  height: `${r.height * 100}%`,
});

/**
 * LLaVA-NeXT's visual tokens where they come from: the tile patches over the original image with the tile
 * boundaries outlined, each row's newline token in a strip beside it, and the base view (the whole image
 * stretched to the square) with its own patches beside that. Hover or arrow keys pick a token.
 */
export function TokenMap({ layout, imageUrl, fill, present, highlighted, onHighlight, compact, label }: TokenMapProps) {
  const cell = (patch: number, rect: FractionRect, extra = '') => (
    <div
      key={patch}
      data-patch={patch}
      data-kept={present?.[patch]}
      style={{ ...place(rect), background: fill(patch) }}
      className={`absolute ${extra} ${patch === highlighted ? 'z-10 outline outline-2 outline-amber-400' : ''}`}
    />
  );
  const tokens = layout.tokens.map((t, patch) => ({ ...t, patch }));
  const tiles = layout.tiles.filter((t) => t.kind === 'tile');

  function onKeyDown(event: KeyboardEvent) {
    const move = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (move === undefined) return;
    event.preventDefault();
    const next = (highlighted ?? 0) + (highlighted === null ? 0 : move);
    if (next >= 0 && next < layout.tokens.length) onHighlight(next);
  }

  return (
    // biome-ignore lint/a11y/useSemanticElements: a keyboard-driven token map (arrow keys move between tokens), not a form group
    <div
      role="group"
      aria-label={label}
      tabIndex={compact ? undefined : 0}
      onKeyDown={compact ? undefined : onKeyDown}
      onFocus={() => !compact && highlighted === null && onHighlight(0)}
      onMouseOver={(event) => {
        const patch = (event.target as HTMLElement).dataset.patch;
        if (patch !== undefined) onHighlight(Number(patch));
      }}
      onMouseLeave={() => onHighlight(null)}
      className="flex items-start gap-3 outline-none ring-sky-500 focus-visible:ring-2"
    >
      <figure className="min-w-0 flex-1">
        <div className="flex">
          <div
            data-testid="tiled-image"
            className="relative w-full overflow-hidden rounded-md bg-zinc-200 dark:bg-zinc-800"
            style={{ aspectRatio: `${layout.imageWidth} / ${layout.imageHeight}` }}
          >
            {imageUrl && (
              <img
                src={imageUrl}
                alt={`Uploaded original, ${layout.imageWidth}×${layout.imageHeight}`}
                className="absolute inset-0 h-full w-full object-fill"
              />
            )}
            {tokens.filter((t) => t.kind === 'tile').map((t) => cell(t.patch, t.rect, 'border-[0.5px] border-white/10'))}
            {tiles.map((t) => (
              <div
                key={`${t.row},${t.col}`}
                data-tile={`${t.row},${t.col}`}
                style={place(t.rect)}
                className="pointer-events-none absolute border border-amber-300/90"
              />
            ))}
          </div>
          <div className="relative ml-1 w-2 shrink-0 self-stretch" title="newline tokens, one per row">
            {tokens
              .filter((t) => t.kind === 'newline')
              .map((t) =>
                cell(t.patch, { x: 0, y: t.rect.y, width: 1, height: t.rect.height }, 'rounded-sm border-[0.5px] border-zinc-400'),
              )}
          </div>
        </div>
        <figcaption className="mt-1 text-xs text-zinc-500">
          {compact ? label : `Original image, ${tiles.length} tiles outlined; newline tokens on the right`}
        </figcaption>
      </figure>
      {!compact && (
        <figure className="w-32 shrink-0">
          <div data-testid="base-view" className="relative aspect-square w-full overflow-hidden rounded-md bg-zinc-200 dark:bg-zinc-800">
            {imageUrl && (
              <img
                src={imageUrl}
                alt="Base view: the whole upload stretched square"
                className="absolute inset-0 h-full w-full object-fill"
              />
            )}
            {tokens.filter((t) => t.kind === 'base').map((t) => cell(t.patch, t.rect, 'border-[0.5px] border-white/10'))}
          </div>
          <figcaption className="mt-1 text-xs text-zinc-500">Base view: the whole image, stretched to the square</figcaption>
        </figure>
      )}
    </div>
  );
}
