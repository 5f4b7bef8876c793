import { useEffect, useRef, useState } from 'react';
import type { Trace } from '../../../shared/trace.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow, toBase64 } from '../common/calls.js';
import { Inspector } from './Inspector.js';
import { traceToView } from './traceAdapter.js';

export type InspectSource = { traceId: string; imageUrl?: string } | { trace: Trace; imageUrl?: string };

/** The inspector over the app: loads a stored trace (or shows an opened file) and exports through main. */
export function InspectorDialog({ source, onClose }: { source: InspectSource; onClose(): void }) {
  const client = useClient();
  const [trace, setTrace] = useState<Trace | null>('trace' in source ? source.trace : null);
  const [error, setError] = useState<string | null>(null);
  const closeButton = useRef<HTMLButtonElement>(null);
  const traceId = 'traceId' in source ? source.traceId : undefined;

  useEffect(() => {
    closeButton.current?.focus();
    if (!traceId) return;
    callOrThrow(client, 'traces.get', { traceId }).then(setTrace, (err: Error) => setError(err.message));
  }, [client, traceId]);

  const saved = (result: { path: string | null }) => {
    if (!result.path) throw new Error('cancelled');
  };
  return (
    <div
      role="dialog"
      aria-modal="true"
      aria-label="Pruning inspector"
      onKeyDown={(e) => e.key === 'Escape' && onClose()}
      className="fixed inset-0 z-20 flex flex-col overflow-y-auto bg-white dark:bg-zinc-950"
    >
      <div className="flex justify-end p-2">
        <button
          ref={closeButton}
          type="button"
          onClick={onClose}
          className="rounded-md border border-zinc-300 px-3 py-1 text-sm dark:border-zinc-700"
        >
          Close inspector
        </button>
      </div>
      {error && (
        <p role="alert" className="p-4 text-red-600">
          The trace could not be opened: {error}
        </p>
      )}
      {!trace && !error && <p className="p-4 text-zinc-500">Loading the trace…</p>}
      {trace && (
        <Inspector
          view={traceToView(trace)}
          imageUrl={source.imageUrl}
          onExportTrace={traceId ? async (format) => saved(await callOrThrow(client, 'export.trace', { traceId, format })) : undefined}
          onExportOverlay={
            traceId ? async (png) => saved(await callOrThrow(client, 'export.overlay', { traceId, png: toBase64(png) })) : undefined
          }
        />
      )}
    </div>
  );
}
