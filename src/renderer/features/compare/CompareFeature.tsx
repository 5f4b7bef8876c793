import { useEffect, useRef, useState } from 'react';
import type { CompareAnswerEvent } from '../../../shared/ipc-features.js';
import { DEFAULT_SETTINGS, type AppSettings } from '../../../shared/settings.js';
import type { ViewProps } from '../../shell/App.js';
import { useClient } from '../../shell/client-context.js';
import { askBlocker } from '../common/askBlocker.js';
import { Composer, type Attachment } from '../chat/Composer.js';
import { addImage, callOrThrow } from '../common/calls.js';
import type { InspectSource } from '../inspector/InspectorDialog.js';
import { CompareView, type ComparePane, type Side } from './CompareView.js';
import { ErrorText } from '../common/ErrorText.js';

const idle = (method: string): ComparePane => ({ method, text: '', status: 'idle' });

/** Compare mode: one question and image, two methods (remembered in the settings), answers side by side. */
export function CompareFeature({ onInspect, ...props }: ViewProps & { onInspect(source: InspectSource): void }) {
  const client = useClient();
  const [settings, setSettings] = useState<AppSettings>(DEFAULT_SETTINGS);
  const [panes, setPanes] = useState<Record<Side, ComparePane & { traceId?: string }>>({
    left: idle('none'),
    right: idle('transprune-high'),
  });
  // A ref, not state: events can arrive before React re-renders with the new run's id.
  const runId = useRef<string>(undefined);
  const [attachment, setAttachment] = useState<Attachment>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    void callOrThrow(client, 'settings.get', {}).then((s) => {
      setSettings(s);
      setPanes({ left: idle(s.compare.left), right: idle(s.compare.right) });
    });
  }, [client]);

  useEffect(
    () =>
      client.on('compare.answer', (event: CompareAnswerEvent) => {
        if (event.runId !== runId.current) return;
        setPanes((p) => ({
          ...p,
          [event.side]: {
            ...p[event.side],
            text: event.text,
            status: event.status,
            stats: event.stats,
            error: event.error,
            traceId: event.traceId,
          },
        }));
      }),
    [client],
  );

  function changeMethod(side: Side, method: string) {
    setPanes((p) => ({ ...p, [side]: idle(method) }));
    const next = { ...settings, compare: { ...settings.compare, [side]: method } };
    setSettings(next);
    void callOrThrow(client, 'settings.set', next).catch((err: Error) => setError(err.message));
  }

  async function run(text: string) {
    if (!attachment) return setError('Attach an image to compare on.');
    setError(undefined);
    setPanes((p) => ({ left: { ...idle(p.left.method), status: 'streaming' }, right: { ...idle(p.right.method), status: 'streaming' } }));
    try {
      const started = await callOrThrow(client, 'compare.run', {
        text,
        image: attachment.image.id,
        left: panes.left.method,
        right: panes.right.method,
      });
      runId.current = started.runId;
    } catch (err) {
      setError((err as Error).message);
      setPanes((p) => ({ left: idle(p.left.method), right: idle(p.right.method) }));
    }
  }

  const busy = panes.left.status === 'streaming' || panes.right.status === 'streaming';
  const inspectButton = (side: Side) =>
    panes[side].traceId && (
      <button
        type="button"
        className="ml-4 text-xs text-sky-700 underline dark:text-sky-400"
        onClick={() => onInspect({ traceId: panes[side].traceId!, imageUrl: attachment?.thumbnailUrl })}
      >
        Inspect {side} pruning
      </button>
    );
  return (
    <section aria-label="Compare" className="flex min-h-0 flex-1 flex-col">
      <ErrorText message={error} className="mx-3 mt-2" />
      <CompareView
        left={panes.left}
        right={panes.right}
        onMethodChange={changeMethod}
        composer={
          <>
            <div className="px-4">
              {inspectButton('left')}
              {inspectButton('right')}
            </div>
            <Composer
              attachments={attachment ? [attachment] : []}
              busy={busy}
              disabledReason={askBlocker(props)}
              onAttach={async (files) => setAttachment(await addImage(client, files[0]))}
              onRemoveAttachment={() => setAttachment(undefined)}
              onSend={(text) => void run(text)}
              onStop={() => runId.current && void callOrThrow(client, 'compare.stop', { runId: runId.current })}
            />
          </>
        }
      />
    </section>
  );
}
