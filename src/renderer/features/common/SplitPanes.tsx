import { useRef, useState, type KeyboardEvent, type PointerEvent, type ReactNode } from 'react';

interface SplitPanesProps {
  left: ReactNode;
  right: ReactNode;
  label: string;
  /** Starting share of the left pane, in percent. */
  initial?: number;
}

const MIN = 20;
const MAX = 80;
const clamp = (x: number) => Math.min(MAX, Math.max(MIN, x));

/** Two panes with a divider that resizes them by pointer drag or by the arrow keys. */
export function SplitPanes({ left, right, label, initial = 50 }: SplitPanesProps) {
  const [share, setShare] = useState(initial);
  const container = useRef<HTMLDivElement>(null);

  function onPointerMove(event: PointerEvent) {
    if (!(event.buttons & 1) || !container.current) return;
    const box = container.current.getBoundingClientRect();
    if (box.width > 0) setShare(clamp(((event.clientX - box.left) / box.width) * 100));
  }

  function onKeyDown(event: KeyboardEvent) {
    const step = { ArrowLeft: -5, ArrowRight: 5, Home: MIN - share, End: MAX - share }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    setShare((s) => clamp(s + step));
  }

  return (
    <div ref={container} className="flex min-h-0 flex-1" onPointerMove={onPointerMove}>
      <div className="min-w-0 overflow-auto" style={{ flexBasis: `${share}%` }}>
        {left}
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: a focusable window splitter (ARIA's separator with a value), which <hr> cannot be */}
      <div
        role="separator"
        tabIndex={0}
        aria-label={label}
        aria-orientation="vertical"
        aria-valuenow={Math.round(share)}
        aria-valuemin={MIN}
        aria-valuemax={MAX}
        onKeyDown={onKeyDown}
        onPointerDown={(e) => e.currentTarget.setPointerCapture?.(e.pointerId)}
        className="w-1.5 shrink-0 cursor-col-resize bg-zinc-200 hover:bg-sky-400 focus-visible:bg-sky-500 focus-visible:outline-none dark:bg-zinc-800"
      />
      <div className="min-w-0 flex-1 overflow-auto">{right}</div>
    </div>
  );
}
