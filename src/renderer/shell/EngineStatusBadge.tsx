import type { EngineStatus } from '../../shared/ipc.js';

/**
 * One line that says whether the engine can answer, and on what, in the user's words; announced to
 * screen readers as it changes. The technical reason of a crash is shown in Settings, not here.
 */
export function engineStatusText(status: EngineStatus | undefined): string {
  const provider = status?.info?.activeProvider;
  switch (status?.state) {
    case undefined:
      return 'Connecting to the engine…';
    case 'starting':
      return 'Engine starting…';
    case 'ready':
      return `Engine ready · ${provider}`;
    case 'busy':
      return `Engine busy · ${provider}`;
    case 'crashed':
      return 'Engine stopped unexpectedly · restarting';
    case 'restarting':
      return 'Restarting the engine…';
    case 'stopped':
      return status.reason === 'shut down' || !status.reason ? 'Engine stopped' : 'Engine keeps stopping: restart it in Settings';
  }
}

const DOT: Record<string, string> = {
  ready: 'bg-emerald-500',
  busy: 'bg-amber-400 animate-pulse',
  starting: 'bg-sky-400 animate-pulse',
  restarting: 'bg-orange-500 animate-pulse',
  crashed: 'bg-red-600',
  stopped: 'bg-zinc-400',
};

export function EngineStatusBadge({ status }: { status: EngineStatus | undefined }) {
  const state = status?.state ?? 'starting';
  return (
    <div
      role="status"
      aria-live="polite"
      data-state={state}
      title={status?.info ? `onnxruntime ${status.info.versions.onnxruntime}, node ${status.info.versions.node}` : undefined}
      className="flex max-w-[60ch] items-center gap-2 truncate rounded-full border border-zinc-200 px-3 py-1 text-xs text-zinc-700 dark:border-zinc-700 dark:text-zinc-300"
    >
      <span aria-hidden="true" className={`size-2 shrink-0 rounded-full ${DOT[state]}`} />
      <span className="truncate">{engineStatusText(status)}</span>
    </div>
  );
}
