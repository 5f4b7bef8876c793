import { useEffect, useState, type ChangeEvent } from 'react';
import { type ComparisonMessage, currentVersion, type Message } from '../../../shared/conversation.js';
import type { ModelSummary } from '../../../shared/ipc.js';
import { type Trace, viewFraming } from '../../../shared/trace.js';
import { useClient } from '../../shell/client-context.js';
import type { ViewProps } from '../../shell/App.js';
import { askBlocker } from '../common/askBlocker.js';
import { callOrThrow, deliverExport } from '../common/calls.js';
import { CompareFeature, type CompareStart } from '../compare/CompareFeature.js';
import { InspectorDialog, type InspectSource } from '../inspector/InspectorDialog.js';
import { useChat } from './chatStore.js';
import { Composer } from './Composer.js';
import { ConversationList } from './ConversationList.js';
import { ConversationSettingsPanel } from './ConversationSettings.js';
import { MessageList } from './MessageList.js';
import { ModelPicker, modelInUse } from './ModelPicker.js';
import { NoModelWelcome } from './NoModelWelcome.js';
import { SamplePicker } from './SamplePicker.js';
import type { ModelInputView } from './WhatModelSees.js';

type Mode = 'chat' | 'compare';

/** The chat slot: a conversation (or the compare mode), with the inspector on top when opened. */
export function ChatFeature(props: ViewProps) {
  const { store, state } = useChat();
  const ownSettings = state.active?.settings;
  // A file that could not be opened is shown over the conversation it was opened in, not carried to the next one.
  const [traceError, setTraceError] = useState<{ message: string; over?: string } | null>(null);
  const shownTraceError = traceError?.over === state.active?.id ? traceError?.message : undefined;
  const [mode, setMode] = useState<Mode>('chat');
  const [inspecting, setInspecting] = useState<InspectSource | null>(null);
  const [compareStart, setCompareStart] = useState<CompareStart>();
  const [shownComparison, setShownComparison] = useState<ComparisonMessage>();
  const tab = (id: Mode, label: string) => (
    <button
      type="button"
      role="tab"
      aria-selected={mode === id}
      onClick={() => setMode(id)}
      className="rounded-md px-3 py-1 text-sm aria-selected:bg-zinc-200 aria-selected:font-medium dark:aria-selected:bg-zinc-800"
    >
      {label}
    </button>
  );
  const compare = (start: CompareStart) => {
    setCompareStart(start);
    setMode('compare');
  };
  return (
    <div className="flex min-h-0 min-w-0 flex-1 flex-col">
      <div className="flex flex-wrap items-center justify-between gap-2 border-b border-zinc-200 px-3 py-1.5 dark:border-zinc-800">
        <div role="tablist" aria-label="Mode" className="flex gap-1">
          {tab('chat', 'Chat')}
          {tab('compare', 'Compare')}
        </div>
        <div className="flex min-w-0 items-center gap-2">
          <ModelPicker
            models={props.models}
            conversation={
              ownSettings && { modelId: ownSettings.modelId, choose: (modelId) => store.setSettings({ ...ownSettings, modelId }) }
            }
          />
          <OpenTraceButton
            onOpen={(trace) => setInspecting({ trace })}
            onError={(message) => setTraceError(message ? { message, over: state.active?.id } : null)}
          />
        </div>
      </div>
      {shownTraceError && (
        <p
          role="alert"
          className="flex items-start gap-2 border-b border-red-200 bg-red-50 px-3 py-1.5 text-sm text-red-700 dark:border-red-900 dark:bg-red-950 dark:text-red-200"
        >
          <span className="min-w-0 flex-1 wrap-anywhere">{shownTraceError}</span>
          <button
            type="button"
            aria-label="Dismiss"
            onClick={() => setTraceError(null)}
            className="shrink-0 rounded px-1 hover:bg-red-100 dark:hover:bg-red-900"
          >
            ✕
          </button>
        </p>
      )}
      {mode === 'chat' ? (
        <ChatMode
          {...props}
          onInspect={setInspecting}
          onCompare={compare}
          onOpenComparison={(message) => {
            setShownComparison(message);
            setCompareStart(undefined);
            setMode('compare');
          }}
        />
      ) : (
        <CompareFeature
          {...props}
          onInspect={setInspecting}
          start={compareStart}
          conversationId={state.active?.id}
          // What compare mode shows when it opens: the comparison asked for, else this conversation's latest.
          shown={shownComparison ?? latestComparison(state.active?.messages)}
          images={state.images}
          onRun={(conversationId) => {
            setShownComparison(undefined);
            void store.select(conversationId).then(() => store.refresh());
          }}
        />
      )}
      {inspecting && <InspectorDialog source={inspecting} onClose={() => setInspecting(null)} />}
    </div>
  );
}

interface ChatModeProps extends ViewProps {
  onInspect(source: InspectSource): void;
  onCompare(start: CompareStart): void;
  onOpenComparison(message: ComparisonMessage): void;
}

function ChatMode({ onInspect, onCompare, onOpenComparison, ...props }: ChatModeProps) {
  const { store, state } = useChat();
  const modelInput = useModelInput(state.active?.messages);
  const messages = state.active?.messages ?? [];
  /** The question an answer replies to, and the image it was about. */
  const askedFor = (messageId: string) => {
    const index = messages.findIndex((m) => m.id === messageId);
    const compared = messages[index];
    if (compared?.role === 'comparison') return { question: compared.text, imageUrl: state.images[compared.images[0]]?.thumbnailUrl };
    const before = messages.slice(0, index);
    const question = before.findLast((m) => m.role === 'user');
    const user = before.findLast((m) => m.role === 'user' && m.images.length > 0);
    const id = user?.role === 'user' ? user.images.at(-1) : undefined;
    return { question: question?.role === 'user' ? question.text : undefined, imageUrl: id ? state.images[id]?.thumbnailUrl : undefined };
  };
  const blocker = askBlocker(props);
  const inUse = useModelInUse(props.models, state.active?.settings?.modelId);
  const textOnly = inUse?.details?.visualTokens === 0 ? inUse : undefined;
  const offerSamples = messages.length === 0 && (props.models?.length ?? 0) > 0;
  const needsModel = messages.length === 0 && props.models?.length === 0;
  return (
    <section aria-label="Chat" className="flex min-h-0 min-w-0 flex-1 flex-col">
      {state.error && (
        <p role="alert" className="mx-3 mt-2 rounded-md bg-red-50 p-2 text-sm text-red-700 dark:bg-red-950 dark:text-red-200">
          {state.error}
        </p>
      )}
      {state.active?.branchedFrom && (
        <p className="mx-3 mt-2 text-xs text-zinc-500">
          A branch: an edited question, asked again.{' '}
          <button
            type="button"
            className="text-sky-700 underline hover:no-underline dark:text-sky-400"
            onClick={() => void store.select(state.active!.branchedFrom!.conversationId)}
          >
            Open the conversation it came from
          </button>
        </p>
      )}
      {state.active && (
        <div className="flex min-w-0 items-start justify-between gap-2 px-3 pt-2">
          {state.active.settings && props.models ? (
            <ConversationSettingsPanel
              key={state.active.id}
              settings={state.active.settings}
              models={props.models}
              onSave={(settings) => store.setSettings(settings)}
            />
          ) : (
            <span />
          )}
          <ExportConversation id={state.active.id} />
        </div>
      )}
      {needsModel ? (
        <NoModelWelcome onChooseModel={props.onView && (() => props.onView!('models'))} />
      ) : offerSamples ? (
        <SamplePicker
          disabledReason={blocker}
          onAsk={(attachment, text) => {
            store.newChat();
            store.use(attachment);
            void store.send(text);
          }}
          onCompare={(attachment, text) => onCompare({ attachment, text })}
        />
      ) : (
        <MessageList
          conversationId={state.active?.id}
          messages={messages}
          progress={state.progress}
          thumbnailUrl={(id) => state.images[id]?.thumbnailUrl ?? ''}
          images={store.imageInfo()}
          modelInput={modelInput}
          modelName={(id) => props.models?.find((m) => m.id === id)?.name}
          onRegenerate={(id) => void store.regenerate(id)}
          onSelectVersion={(id, index) => void store.selectVersion(id, index)}
          onInspect={(messageId, traceId) => onInspect({ traceId, ...askedFor(messageId) })}
          onOpenComparison={onOpenComparison}
          onEdit={(messageId, text) => void store.edit(messageId, text)}
        />
      )}
      <Composer
        attachments={state.attachments}
        busy={store.busy}
        disabledReason={blocker}
        noImageReason={
          textOnly ? `${textOnly.name} is a text-only model: it answers without images (import it with its mmproj to see)` : undefined
        }
        onAttach={(file) => store.attach(file)}
        onRemoveAttachment={(id) => store.detach(id)}
        onSend={(text) => store.send(text)}
        onStop={() => void store.stop()}
      />
    </section>
  );
}

/** The newest comparison kept in the conversation, if any. */
function latestComparison(messages: Message[] | undefined): ComparisonMessage | undefined {
  const found = messages?.findLast((m) => m.role === 'comparison');
  return found?.role === 'comparison' ? found : undefined;
}

/** Saves the open conversation as Markdown or JSON through main (a save dialog in the app). */
function ExportConversation({ id }: { id: string }) {
  const client = useClient();
  const [note, setNote] = useState<{ text: string; error?: boolean }>();
  async function save(format: 'markdown' | 'json') {
    try {
      const where = deliverExport(await callOrThrow(client, 'export.conversation', { id, format }));
      setNote(where ? { text: where } : undefined);
    } catch (err) {
      setNote({ text: `Export failed: ${(err as Error).message}`, error: true });
    }
  }
  const button =
    'rounded px-2 py-0.5 text-xs text-zinc-500 hover:bg-zinc-100 hover:text-zinc-900 dark:hover:bg-zinc-800 dark:hover:text-zinc-100';
  return (
    <div className="flex shrink-0 items-center justify-end gap-1">
      {note && (
        <span role={note.error ? 'alert' : 'status'} className={`mr-2 truncate text-xs ${note.error ? 'text-red-600' : 'text-zinc-500'}`}>
          {note.text}
        </span>
      )}
      <button type="button" className={button} onClick={() => void save('markdown')}>
        Export Markdown
      </button>
      <button type="button" className={button} onClick={() => void save('json')}>
        Export JSON
      </button>
    </div>
  );
}

/** The sidebar slot: the conversations of the shared chat store. */
export function ConversationsFeature() {
  const { store, state } = useChat();
  return (
    <ConversationList
      conversations={state.conversations}
      activeId={state.active?.id}
      query={state.query}
      onQueryChange={(q) => store.search(q)}
      onSelect={(id) => void store.select(id)}
      onNew={() => store.newChat()}
      onRename={(id, title) => void store.rename(id, title)}
      onDelete={(id) => void store.remove(id)}
      onImport={(file) => void store.importFile(file)}
    />
  );
}

/** The model the next question goes to: the open conversation's own, else the global one new chats take. */
function useModelInUse(models: ModelSummary[] | undefined, ownModelId: string | undefined): ModelSummary | undefined {
  const client = useClient();
  const [globalId, setGlobalId] = useState<string>();
  // biome-ignore lint/correctness/useExhaustiveDependencies: a changed model list can come with a changed choice (an import pins it)
  useEffect(() => {
    callOrThrow(client, 'settings.get', {}).then(
      (s) => setGlobalId(s.modelId),
      () => undefined,
    );
  }, [client, models]);
  return models && modelInUse(models, ownModelId ?? globalId);
}

/**
 * The model's input geometry, read from the latest trace in the conversation (the engine records the
 * resolution, patch grid and where the view lies: padded around the image or cropped from it).
 */
function useModelInput(messages: Message[] | undefined): ModelInputView | undefined {
  const client = useClient();
  const [input, setInput] = useState<ModelInputView>();
  const traceId = messages?.flatMap((m) => (m.role === 'assistant' ? [currentVersion(m).traceId] : [])).findLast(Boolean);
  useEffect(() => {
    if (!traceId) return;
    callOrThrow(client, 'traces.get', { traceId }).then(
      (trace) => {
        if (!trace.image) return;
        const { modelWidth, grid } = trace.image;
        setInput({
          resolution: modelWidth,
          patchSize: modelWidth / grid.cols,
          visualTokens: trace.prompt.visualTokens,
          resizePolicy: viewFraming(trace.image),
        });
      },
      () => undefined,
    );
  }, [client, traceId]);
  return input;
}

/** Opens a trace file in the inspector; a file that is not a trace goes to `onError` in words (null once one opens). */
function OpenTraceButton({ onOpen, onError }: { onOpen(trace: Trace): void; onError(message: string | null): void }) {
  const client = useClient();
  async function open(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    event.target.value = '';
    if (!file) return;
    try {
      onOpen(await callOrThrow(client, 'traces.read', { text: await file.text() }));
      onError(null);
    } catch (err) {
      onError(`${file.name} could not be opened: ${(err as Error).message}.`);
    }
  }
  return (
    <label className="cursor-pointer whitespace-nowrap rounded-md px-2 py-1 text-sm text-zinc-600 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800">
      Open trace file…
      <input type="file" accept="application/json,.json" className="sr-only" onChange={(e) => void open(e)} />
    </label>
  );
}
