import { useEffect, useRef, useState } from 'react';
import type { ComparedAnswer, ComparisonMessage } from '../../../shared/conversation.js';
import type { CompareAnswerEvent } from '../../../shared/ipc-features.js';
import { DEFAULT_SETTINGS, type AppSettings } from '../../../shared/settings.js';
import type { ViewProps } from '../../shell/App.js';
import { useClient } from '../../shell/client-context.js';
import { askBlocker } from '../common/askBlocker.js';
import { Composer, type Attachment } from '../chat/Composer.js';
import { addImage, callOrThrow } from '../common/calls.js';
import { ErrorText } from '../common/ErrorText.js';
import type { InspectSource } from '../inspector/InspectorDialog.js';
import { CompareView, type ComparedQuestion, type ComparePane, type Side } from './CompareView.js';

/** A question to run in compare mode as soon as it opens (a sample's "Compare"). */
export interface CompareStart {
  attachment: Attachment;
  text: string;
}

type Pane = ComparePane & { traceId?: string };
const idle = (method: string): Pane => ({ method, text: '', status: 'idle' });

interface CompareFeatureProps extends ViewProps {
  onInspect(source: InspectSource): void;
  /** A question to run as soon as the mode opens (a sample's "Compare"). */
  start?: CompareStart;
  /** The conversation open in the chat: comparisons are kept there (a new one is made when none is open). */
  conversationId?: string;
  /** A kept comparison to show when the mode opens (after a tab switch or a restart), ready to run again. */
  shown?: ComparisonMessage;
  /** Images known to the chat, by id: a kept comparison's image comes back as the attachment. */
  images?: Record<string, Attachment>;
  /** A run started and was kept in this conversation. */
  onRun?(conversationId: string): void;
}

const paneOf = (answer: ComparedAnswer): Pane => ({
  method: answer.method,
  text: answer.text,
  status: answer.status,
  stats: answer.stats,
  error: answer.error,
  traceId: answer.traceId,
});

/** Compare mode: one question and image, two methods (remembered in the settings), answers side by side. */
export function CompareFeature({ onInspect, start, conversationId, shown, images, onRun, ...props }: CompareFeatureProps) {
  const client = useClient();
  // Which model each pane asks (absent: the conversation's); two different ones compare models, not only methods.
  const [paneModels, setPaneModels] = useState<Partial<Record<Side, string>>>({});
  const chosenModels = useRef(paneModels);
  chosenModels.current = paneModels;
  const [settings, setSettings] = useState<AppSettings>(DEFAULT_SETTINGS);
  const [panes, setPanes] = useState<Record<Side, Pane>>({ left: idle('none'), right: idle('transprune-high') });
  // A ref, not state: events can arrive before React re-renders with the new run's id.
  const runId = useRef<string>(undefined);
  const [attachment, setAttachment] = useState<Attachment>();
  const [asked, setAsked] = useState<ComparedQuestion>();
  const [error, setError] = useState<string>();
  const methods = useRef(panes);
  methods.current = panes;

  // Methods picked before the settings have loaded: kept over the settings' and saved with them once they arrive
  // (saving earlier would write the defaults over the user's stored settings).
  const loaded = useRef(false);
  const earlyPicks = useRef<Partial<Record<Side, string>>>({});

  // biome-ignore lint/correctness/useExhaustiveDependencies: a start request runs once, when the mode opens for it
  useEffect(() => {
    const restoring = shown && !start;
    if (restoring) show(shown); // at once: a model picked while the settings load must not be undone by it
    void callOrThrow(client, 'settings.get', {}).then((s) => {
      loaded.current = true;
      const picks = earlyPicks.current;
      if (Object.keys(picks).length) saveMethods(s, picks);
      else setSettings(s);
      if (restoring) return;
      const compare = { ...s.compare, ...picks };
      setPanes({ left: idle(compare.left), right: idle(compare.right) });
      methods.current = { left: idle(compare.left), right: idle(compare.right) };
      if (start) {
        setAttachment(start.attachment);
        void run(start.text, start.attachment);
      }
    });
  }, [client, start]);

  /** A kept comparison, as it was answered: its question, image, methods and answers. */
  function show(comparison: ComparisonMessage) {
    const image = images?.[comparison.images[0]];
    const restored = { left: paneOf(comparison.left), right: paneOf(comparison.right) };
    setPanes(restored);
    setPaneModels({ left: comparison.left.modelId, right: comparison.right.modelId });
    methods.current = restored;
    setAsked({ text: comparison.text, imageUrl: image?.thumbnailUrl });
    if (image) setAttachment(image);
  }

  // Events of a run whose id is not known yet: the bridge may deliver a fast side's answer before compare.run returns.
  const early = useRef<CompareAnswerEvent[]>([]);
  function apply(event: CompareAnswerEvent) {
    setPanes((p) => ({
      ...p,
      [event.side]: {
        ...p[event.side],
        text: event.text,
        status: event.status,
        stats: event.stats,
        error: event.error,
        progress: event.progress?.message,
        traceId: event.traceId,
      },
    }));
  }

  // biome-ignore lint/correctness/useExhaustiveDependencies: apply only calls state setters
  useEffect(
    () =>
      client.on('compare.answer', (event: CompareAnswerEvent) => {
        if (event.runId === runId.current) apply(event);
        else early.current = [...early.current.slice(-200), event];
      }),
    [client],
  );

  function changeMethod(side: Side, method: string) {
    setPanes((p) => ({ ...p, [side]: idle(method) }));
    if (loaded.current) saveMethods(settings, { [side]: method });
    else earlyPicks.current = { ...earlyPicks.current, [side]: method };
  }

  function saveMethods(base: AppSettings, picks: Partial<Record<Side, string>>) {
    const next = { ...base, compare: { ...base.compare, ...picks } };
    setSettings(next);
    void callOrThrow(client, 'settings.set', next).catch((err: Error) => setError(err.message));
  }

  async function run(text: string, image = attachment): Promise<boolean> {
    if (!image) return false;
    setError(undefined);
    const { left, right } = methods.current;
    setPanes({ left: { ...idle(left.method), status: 'streaming' }, right: { ...idle(right.method), status: 'streaming' } });
    setAsked({ text, imageUrl: image.thumbnailUrl });
    try {
      const started = await callOrThrow(client, 'compare.run', {
        text,
        image: image.image.id,
        left: left.method,
        right: right.method,
        models: chosenModels.current,
        conversationId,
      });
      runId.current = started.runId;
      for (const event of early.current) if (event.runId === started.runId) apply(event);
      early.current = [];
      onRun?.(started.conversationId);
      return true;
    } catch (err) {
      setError((err as Error).message);
      setPanes({ left: idle(left.method), right: idle(right.method) });
      return false;
    }
  }

  const busy = panes.left.status === 'streaming' || panes.right.status === 'streaming';
  const installed = (props.models ?? []).map(({ id, name }) => ({ id, name }));
  const defaultModel = settings.modelId ?? installed[0]?.id;
  const withModel = (side: Side): Pane => ({ ...panes[side], model: paneModels[side] ?? defaultModel });
  const inspectButton = (side: Side) => {
    const traceId = panes[side].traceId;
    return (
      traceId && (
        <button
          type="button"
          className="self-start rounded px-2 py-0.5 text-xs text-zinc-500 hover:bg-zinc-100 hover:text-zinc-900 dark:hover:bg-zinc-800 dark:hover:text-zinc-100"
          onClick={() => onInspect({ traceId, imageUrl: asked?.imageUrl, question: asked?.text })}
        >
          Inspect pruning
        </button>
      )
    );
  };
  return (
    <section aria-label="Compare" className="flex min-h-0 min-w-0 flex-1 flex-col">
      <ErrorText message={error} className="mx-3 mt-2" />
      <CompareView
        left={withModel('left')}
        right={withModel('right')}
        asked={asked}
        onMethodChange={changeMethod}
        models={installed}
        onModelChange={(side, model) => {
          setPaneModels((m) => ({ ...m, [side]: model }));
          setPanes((p) => ({ ...p, [side]: idle(p[side].method) }));
        }}
        paneActions={inspectButton}
        composer={
          <Composer
            attachments={attachment ? [attachment] : []}
            busy={busy}
            disabledReason={askBlocker(props) ?? (attachment ? undefined : 'Attach an image to compare the two methods on it.')}
            onAttach={async (file) => setAttachment(await addImage(client, file))}
            onRemoveAttachment={() => setAttachment(undefined)}
            onSend={(text) => run(text)}
            onStop={() => runId.current && void callOrThrow(client, 'compare.stop', { runId: runId.current })}
          />
        }
      />
    </section>
  );
}
