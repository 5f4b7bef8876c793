import type { KeyboardEvent } from 'react';
import { PAD_COLOUR, type TraceView } from './traceView.js';

interface PatchOverlayProps {
  view: TraceView;
  imageUrl?: string;
  present: boolean[];
  highlighted: number | null;
  onHighlight(patch: number | null): void;
}

const OBJECT_FIT = { pad: 'object-contain', crop: 'object-cover', stretch: 'object-fill' } as const;
const GRID_BACKGROUND = 'rgb(161 161 170)';

/**
 * The image as the model framed it (per the resize policy; the grid's shape) with the patch grid on top:
 * kept patches clear, pruned ones dimmed. Hover or arrow keys pick a patch for the score card.
 */
export function PatchOverlay({ view, imageUrl, present, highlighted, onHighlight }: PatchOverlayProps) {
  const { rows, cols } = view.grid;

  function onKeyDown(event: KeyboardEvent) {
    const moves: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols };
    const move = moves[event.key];
    if (move === undefined) return;
    event.preventDefault();
    const next = (highlighted ?? 0) + (highlighted === null ? 0 : move);
    if (next >= 0 && next < rows * cols) onHighlight(next);
  }

  return (
    // biome-ignore lint/a11y/useSemanticElements: a keyboard-driven grid widget (arrow keys move between patches), not a form group
    <div
      // biome-ignore lint/a11y/noNoninteractiveTabindex: the grid takes focus so the arrow keys can move the highlighted patch
      tabIndex={0}
      role="group"
      aria-label={`Patch grid, ${rows} by ${cols}. Arrow keys move between patches.`}
      onKeyDown={onKeyDown}
      onFocus={() => highlighted === null && onHighlight(0)}
      onMouseLeave={() => onHighlight(null)}
      className="relative w-full max-w-[28rem] overflow-hidden rounded-lg outline-none ring-sky-500 focus-visible:ring-2"
      style={{ aspectRatio: `${cols} / ${rows}`, background: imageUrl && view.resizePolicy === 'pad' ? PAD_COLOUR : GRID_BACKGROUND }}
    >
      {imageUrl && (
        <img
          src={imageUrl}
          // biome-ignore lint/a11y/noRedundantAlt: the alt says what this picture is: the input after the model's resize
          alt="The image as the model sees it"
          className={`absolute inset-0 h-full w-full ${OBJECT_FIT[view.resizePolicy]}`}
        />
      )}
      <div
        className="absolute inset-0 grid"
        style={{ gridTemplateColumns: `repeat(${cols}, 1fr)`, gridTemplateRows: `repeat(${rows}, 1fr)` }}
      >
        {present.map((isPresent, patch) => (
          // biome-ignore lint/a11y/noStaticElementInteractions: hover highlighting for the mouse; the keyboard moves it with the arrow keys
          <div
            // biome-ignore lint/suspicious/noArrayIndexKey: the index is the patch's grid position, its identity
            key={patch}
            data-patch={patch}
            data-kept={isPresent}
            onMouseEnter={() => onHighlight(patch)}
            className={`border-[0.5px] border-white/20 ${isPresent ? '' : 'bg-zinc-950/70'} ${patch === highlighted ? 'outline outline-2 outline-amber-400' : ''}`}
          />
        ))}
      </div>
    </div>
  );
}
