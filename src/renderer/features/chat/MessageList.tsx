import { useLayoutEffect, useRef, useState } from 'react';
import {
  currentVersion,
  type AssistantMessage,
  type ComparisonMessage,
  type Message,
  type StoredImage,
  type UserMessage,
} from '../../../shared/conversation.js';
import { methodLabel } from '../settings/methods.js';
import { StatsRow } from './StatsRow.js';
import { WhatModelSees, type ModelInputView } from './WhatModelSees.js';

export interface MessageListProps {
  /** The conversation shown: opening another one scrolls to its newest answer. */
  conversationId?: string;
  messages: Message[];
  /** What the engine is doing for a streaming answer, by version id (shown until its text arrives). */
  progress?: Record<string, string>;
  thumbnailUrl(imageId: string): string;
  /** Known image details, for "what the model sees"; absent ones just show no popover. */
  images?: Record<string, StoredImage>;
  modelInput?: ModelInputView;
  /** A model's name by id (answers record the id of the model that produced them). */
  modelName?(modelId: string): string | undefined;
  onRegenerate(messageId: string): void;
  onSelectVersion(messageId: string, index: number): void;
  onInspect?(messageId: string, traceId: string): void;
  /** Asks an earlier question again as `text`, in a branch (the conversation keeps the old one). */
  onEdit?(messageId: string, text: string): void;
  /** A comparison kept in the conversation: open it again in compare mode (where it can be run again). */
  onOpenComparison?(message: ComparisonMessage): void;
  copy?(text: string): Promise<void>;
}

/** The conversation: user turns with their images, assistant turns streaming in, with versions and stats. */
export function MessageList(props: MessageListProps) {
  const list = useStickToBottom(props.conversationId, props.messages);

  if (props.messages.length === 0) {
    return (
      <div className="flex flex-1 items-center justify-center p-8 text-center text-zinc-500">
        <p>Ask a question, or drop, paste or pick an image and ask about it.</p>
      </div>
    );
  }
  return (
    <ol ref={list} aria-label="Messages" className="flex min-w-0 flex-1 flex-col gap-4 overflow-y-auto p-4">
      {props.messages.map((m) =>
        m.role === 'user' ? (
          <UserTurn key={m.id} message={m} {...props} />
        ) : m.role === 'assistant' ? (
          <AssistantTurn key={m.id} message={m} {...props} />
        ) : (
          <ComparisonTurn key={m.id} message={m} {...props} />
        ),
      )}
    </ol>
  );
}

/**
 * Keeps the newest message in view: at the bottom when a conversation opens, and while it grows or its
 * images load, unless the user has scrolled up to read.
 */
function useStickToBottom(conversationId: string | undefined, messages: Message[]) {
  const list = useRef<HTMLOListElement>(null);
  const pinned = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: opening another conversation is the event, not a value read here
  useLayoutEffect(() => {
    pinned.current = true;
  }, [conversationId]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the list's children change with the messages; re-observe them
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const toBottom = () => {
      if (pinned.current) el.scrollTop = el.scrollHeight;
    };
    const onScroll = () => {
      pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    };
    toBottom();
    el.addEventListener('scroll', onScroll);
    const observer = typeof ResizeObserver === 'undefined' ? undefined : new ResizeObserver(toBottom);
    for (const child of el.children) observer?.observe(child);
    return () => {
      el.removeEventListener('scroll', onScroll);
      observer?.disconnect();
    };
  }, [conversationId, messages]);
  return list;
}

/** A comparison asked in this conversation: the question and image, both answers side by side with what made them. */
function ComparisonTurn({
  message,
  thumbnailUrl,
  modelName,
  onInspect,
  onOpenComparison,
}: { message: ComparisonMessage } & MessageListProps) {
  const action =
    'rounded px-2 py-0.5 text-xs text-zinc-500 hover:bg-zinc-100 hover:text-zinc-900 dark:hover:bg-zinc-800 dark:hover:text-zinc-100';
  return (
    <li
      aria-label={`Comparison: ${message.text}`}
      className="flex min-w-0 flex-col gap-2 rounded-xl border border-zinc-200 p-3 dark:border-zinc-800"
      data-status={[message.left.status, message.right.status].includes('streaming') ? 'streaming' : 'done'}
    >
      <div className="flex min-w-0 items-start gap-3">
        {message.images.map((id) => (
          // biome-ignore lint/a11y/noRedundantAlt: the thumbnail's whole meaning is "the image compared"
          <img key={id} src={thumbnailUrl(id)} alt="Compared image" className="h-12 w-12 rounded-md object-cover" />
        ))}
        <p className="min-w-0 flex-1 wrap-anywhere">
          <span className="text-xs text-zinc-500">Compared two methods: </span>
          {message.text}
        </p>
        {onOpenComparison && (
          <button type="button" className={action} onClick={() => onOpenComparison(message)}>
            Open in Compare
          </button>
        )}
      </div>
      <div className="grid min-w-0 gap-3 sm:grid-cols-2">
        {(['left', 'right'] as const).map((side) => {
          const answer = message[side];
          return (
            <section key={side} aria-label={`${side === 'left' ? 'Left' : 'Right'} answer`} className="flex min-w-0 flex-col gap-1">
              <p data-testid="answer-source" className="text-xs font-medium text-zinc-600 dark:text-zinc-300">
                {[answer.modelId && (modelName?.(answer.modelId) ?? 'a model no longer installed'), methodLabel(answer.method)]
                  .filter(Boolean)
                  .join(' · ')}
              </p>
              <p className="whitespace-pre-wrap wrap-anywhere text-sm leading-relaxed">
                {answer.text || (answer.status === 'streaming' ? '…' : '(no text)')}
              </p>
              {answer.status !== 'done' && answer.status !== 'streaming' && (
                <p className="text-xs text-amber-600">{STATUS_NOTE[answer.status]}</p>
              )}
              {answer.stats && <StatsRow stats={answer.stats} />}
              {answer.traceId && onInspect && (
                <button type="button" className={`${action} self-start`} onClick={() => onInspect(message.id, answer.traceId!)}>
                  Inspect pruning
                </button>
              )}
            </section>
          );
        })}
      </div>
    </li>
  );
}

function UserTurn({ message, thumbnailUrl, images, modelInput, onEdit }: { message: UserMessage } & MessageListProps) {
  const [draft, setDraft] = useState<string | null>(null);
  return (
    <li className="group ml-auto flex min-w-0 max-w-[80%] flex-col items-end gap-2">
      {message.images.length > 0 && (
        <div className="flex flex-wrap justify-end gap-2">
          {message.images.map((id) => (
            <figure key={id} className="flex flex-col items-end gap-1">
              <img
                src={thumbnailUrl(id)}
                // biome-ignore lint/a11y/noRedundantAlt: the thumbnail's whole meaning is "the image you attached"
                alt="Attached image"
                className="max-h-48 rounded-lg border border-zinc-200 dark:border-zinc-700"
              />
              {modelInput && images?.[id] && <WhatModelSees image={images[id]} model={modelInput} />}
            </figure>
          ))}
        </div>
      )}
      {draft !== null ? (
        <form
          aria-label="Edit the question"
          className="flex w-full min-w-72 flex-col items-end gap-1"
          onSubmit={(e) => {
            e.preventDefault();
            onEdit?.(message.id, draft.trim());
            setDraft(null);
          }}
        >
          <textarea
            aria-label="Edited question"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            rows={2}
            className="w-full rounded-xl border border-sky-500 bg-transparent px-3 py-2"
          />
          <div className="flex gap-2 text-xs">
            <button
              type="button"
              onClick={() => setDraft(null)}
              className="rounded px-2 py-0.5 text-zinc-500 hover:bg-zinc-100 dark:hover:bg-zinc-800"
            >
              Cancel
            </button>
            <button type="submit" className="rounded bg-sky-600 px-2 py-0.5 text-white">
              Ask in a branch
            </button>
          </div>
        </form>
      ) : (
        message.text && (
          <p className="max-w-full whitespace-pre-wrap wrap-anywhere rounded-2xl bg-sky-600 px-4 py-2 text-white">{message.text}</p>
        )
      )}
      {onEdit && draft === null && (
        <button
          type="button"
          onClick={() => setDraft(message.text)}
          className="rounded px-2 py-0.5 text-xs text-zinc-500 opacity-0 hover:bg-zinc-100 group-focus-within:opacity-100 group-hover:opacity-100 focus:opacity-100 dark:hover:bg-zinc-800"
        >
          Edit
        </button>
      )}
    </li>
  );
}

const STATUS_NOTE = { interrupted: 'Stopped before the end.', error: 'The answer failed.' } as const;

function AssistantTurn({
  message,
  progress,
  modelName,
  onRegenerate,
  onSelectVersion,
  onInspect,
  copy = (t) => navigator.clipboard.writeText(t),
}: { message: AssistantMessage } & MessageListProps) {
  const version = currentVersion(message);
  const streaming = version.status === 'streaming';
  const working = streaming && version.text === '' ? progress?.[version.id] : undefined;
  const [copied, setCopied] = useState(false);
  // Which model and method produced this answer (conversations can change both between answers).
  const source = [
    version.modelId && (modelName?.(version.modelId) ?? 'a model no longer installed'),
    version.method && methodLabel(version.method),
  ]
    .filter(Boolean)
    .join(' · ');
  const action =
    'rounded px-2 py-0.5 text-xs text-zinc-500 hover:bg-zinc-100 hover:text-zinc-900 disabled:opacity-40 dark:hover:bg-zinc-800 dark:hover:text-zinc-100';

  return (
    <li className="flex min-w-0 max-w-[85%] flex-col gap-1" aria-busy={streaming} data-status={version.status}>
      {working && (
        <p role="status" data-testid="answer-progress" className="text-sm text-zinc-500">
          {working}…
        </p>
      )}
      <p className="whitespace-pre-wrap wrap-anywhere leading-relaxed" data-testid="answer-text">
        {version.text}
        {streaming && <span aria-hidden className="ml-0.5 inline-block h-4 w-2 animate-pulse bg-zinc-400 align-middle" />}
      </p>
      {version.status !== 'done' && version.status !== 'streaming' && (
        <p
          data-testid="answer-note"
          role={version.status === 'error' ? 'alert' : undefined}
          className={`text-xs ${version.status === 'error' ? 'text-red-600' : 'text-amber-600'}`}
        >
          {STATUS_NOTE[version.status]} {version.error}{' '}
          <button type="button" className="underline hover:no-underline" onClick={() => onRegenerate(message.id)}>
            Regenerate
          </button>
        </p>
      )}
      {source && (
        <p data-testid="answer-source" className="text-xs text-zinc-500 dark:text-zinc-400">
          {source}
        </p>
      )}
      {version.stats && <StatsRow stats={version.stats} />}
      <div className="flex flex-wrap items-center gap-1">
        {message.versions.length > 1 && (
          // biome-ignore lint/a11y/useSemanticElements: a toolbar of buttons, not a form: a fieldset would bring form semantics and a border
          <div role="group" aria-label="Answer versions" className="flex items-center text-xs text-zinc-500">
            <button
              type="button"
              className={action}
              aria-label="Previous version"
              disabled={message.current === 0 || streaming}
              onClick={() => onSelectVersion(message.id, message.current - 1)}
            >
              ‹
            </button>
            <span aria-live="polite">
              {message.current + 1} / {message.versions.length}
              {version.method && ` · ${methodLabel(version.method)}`}
            </span>
            <button
              type="button"
              className={action}
              aria-label="Next version"
              disabled={message.current === message.versions.length - 1 || streaming}
              onClick={() => onSelectVersion(message.id, message.current + 1)}
            >
              ›
            </button>
          </div>
        )}
        <button type="button" className={action} disabled={streaming} onClick={() => copy(version.text).then(() => setCopied(true))}>
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" className={action} disabled={streaming} onClick={() => onRegenerate(message.id)}>
          Regenerate
        </button>
        {onInspect && version.traceId && version.stats?.visualTokensTotal !== 0 && (
          <button type="button" className={action} onClick={() => onInspect(message.id, version.traceId!)}>
            Inspect pruning
          </button>
        )}
      </div>
    </li>
  );
}
