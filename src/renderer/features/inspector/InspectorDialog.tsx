import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { Trace } from '../../../shared/trace.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow, deliverExport, toBase64 } from '../common/calls.js';
import { Inspector } from './Inspector.js';
import { traceToView } from './traceAdapter.js';

/** What to inspect: a stored trace (by id) or an opened file, with the question it answers when known. */
export type InspectSource = ({ traceId: string } | { trace: Trace }) & { imageUrl?: string; question?: string };

/**
 * The inspector over the app, as a modal dialog: focus moves in, Tab stays inside, Esc closes and focus
 * goes back where it was. Loads a stored trace (or shows an opened file), finds the image the model saw
 * in the image store by the trace's image hash, and exports through main.
 */
export function InspectorDialog({ source, onClose }: { source: InspectSource; onClose(): void }) {
  const client = useClient();
  const [trace, setTrace] = useState<Trace | null>('trace' in source ? source.trace : null);
  const [imageUrl, setImageUrl] = useState(source.imageUrl);
  const [error, setError] = useState<string | null>(null);
  const dialog = useRef<HTMLDivElement>(null);
  const closeButton = useRef<HTMLButtonElement>(null);
  const traceId = 'traceId' in source ? source.traceId : undefined;

  const closing = useRef(onClose);
  closing.current = onClose;
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    closeButton.current?.focus();
    // On the document, so the keys work wherever the focus is (even on the page body after a click).
    const onKeyDown = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault(); // the composer's Esc (stop streaming) is not for this key press
        closing.current();
      } else if (event.key === 'Tab' && dialog.current) keepFocusInside(dialog.current, event);
    };
    document.addEventListener('keydown', onKeyDown, true);
    return () => {
      document.removeEventListener('keydown', onKeyDown, true);
      opener?.focus?.();
    };
  }, []);
  useEffect(() => {
    if (!traceId) return;
    callOrThrow(client, 'traces.get', { traceId }).then(setTrace, (err: Error) => setError(err.message));
  }, [client, traceId]);
  const imageHash = trace?.image?.hash;
  useEffect(() => {
    if (source.imageUrl || !imageHash) return;
    callOrThrow(client, 'images.get', { id: imageHash }).then(
      ({ thumbnail }) => setImageUrl(thumbnail),
      () => undefined, // not in this app's image store: the grid is drawn without it
    );
  }, [client, imageHash, source.imageUrl]);

  const close: ReactNode = (
    <button
      ref={closeButton}
      type="button"
      onClick={onClose}
      className="rounded-md border border-zinc-300 px-3 py-1 text-sm dark:border-zinc-700"
    >
      Close inspector
    </button>
  );
  return (
    <div
      ref={dialog}
      role="dialog"
      aria-modal="true"
      aria-label="Pruning inspector"
      className="fixed inset-0 z-20 flex flex-col overflow-y-auto bg-white dark:bg-zinc-950"
    >
      {trace ? (
        <Inspector
          view={traceToView(trace)}
          imageUrl={imageUrl}
          question={source.question}
          toolbarEnd={close}
          onExportTrace={
            traceId ? async (format) => deliverExport(await callOrThrow(client, 'export.trace', { traceId, format })) : undefined
          }
          onExportOverlay={
            traceId
              ? async (png, layer) => deliverExport(await callOrThrow(client, 'export.overlay', { traceId, png: toBase64(png), layer }))
              : undefined
          }
        />
      ) : (
        <>
          <div role="toolbar" aria-label="Inspector actions" className="flex justify-end p-2">
            {close}
          </div>
          {error ? (
            <p role="alert" className="p-4 text-red-600">
              The trace could not be opened: {error}
            </p>
          ) : (
            <p className="p-4 text-zinc-500">Loading the trace…</p>
          )}
        </>
      )}
    </div>
  );
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** Wraps Tab and Shift+Tab around the dialog's first and last focusable elements. */
function keepFocusInside(container: HTMLElement, event: globalThis.KeyboardEvent): void {
  const focusable = [...container.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => el.getClientRects().length > 0);
  if (focusable.length === 0) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  const active = document.activeElement;
  const outside = !container.contains(active);
  if (event.shiftKey && (active === first || outside)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (active === last || outside)) {
    event.preventDefault();
    first.focus();
  }
}
