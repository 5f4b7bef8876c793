import type { Progress } from '../../../shared/progress.js';

/** A labelled progress bar; indeterminate while the total is unknown (0). */
export function ProgressBar({ label, progress, onCancel }: { label: string; progress: Progress; onCancel?(): void }) {
  const percent = progress.total > 0 ? Math.round((progress.done / progress.total) * 100) : undefined;
  return (
    <div className="flex items-center gap-3 text-sm">
      <div className="flex-1">
        <div className="flex justify-between text-xs text-zinc-500">
          <span>{progress.message ?? label}</span>
          {percent !== undefined && <span>{percent}%</span>}
        </div>
        <div
          role="progressbar"
          aria-label={label}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent}
          className="mt-1 h-1.5 overflow-hidden rounded bg-zinc-200 dark:bg-zinc-800"
        >
          <div
            className={`h-full bg-sky-500 ${percent === undefined ? 'w-1/3 animate-pulse' : ''}`}
            style={percent === undefined ? undefined : { width: `${percent}%` }}
          />
        </div>
      </div>
      {onCancel && (
        <button type="button" onClick={onCancel} className="rounded-md border border-zinc-300 px-2 py-1 text-xs dark:border-zinc-600">
          Cancel
        </button>
      )}
    </div>
  );
}
