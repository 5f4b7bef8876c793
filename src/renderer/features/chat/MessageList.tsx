import { useEffect, useRef, useState } from 'react';
import { currentVersion, type AssistantMessage, type Message, type StoredImage, type UserMessage } from '../../../shared/conversation.js';
import { StatsRow } from './StatsRow.js';
import { WhatModelSees, type ModelInputView } from './WhatModelSees.js';

export interface MessageListProps {
  messages: Message[];
  thumbnailUrl(imageId: string): string;
  /** Known image details, for "what the model sees"; absent ones just show no popover. */
  images?: Record<string, StoredImage>;
  modelInput?: ModelInputView;
  onRegenerate(messageId: string): void;
  onSelectVersion(messageId: string, index: number): void;
  onInspect?(messageId: string, traceId: string): void;
  copy?(text: string): Promise<void>;
}

/** The conversation: user turns with their images, assistant turns streaming in, with versions and stats. */
export function MessageList(props: MessageListProps) {
  const end = useRef<HTMLDivElement>(null);
  const last = props.messages.at(-1);
  const lastText = last?.role === 'assistant' ? currentVersion(last).text : '';
  // biome-ignore lint/correctness/useExhaustiveDependencies: scrolls whenever a message arrives or the streaming answer grows
  useEffect(() => {
    // A statement, not an expression: newer Chromium returns a promise from scrollIntoView, which React would take for a cleanup.
    end.current?.scrollIntoView?.({ block: 'end' });
  }, [props.messages.length, lastText]);

  if (props.messages.length === 0) {
    return (
      <div className="flex flex-1 items-center justify-center p-8 text-center text-zinc-500">
        <p>Drop, paste or pick an image, then ask a question about it.</p>
      </div>
    );
  }
  return (
    <ol aria-label="Messages" className="flex flex-1 flex-col gap-4 overflow-y-auto p-4">
      {props.messages.map((m) =>
        m.role === 'user' ? <UserTurn key={m.id} message={m} {...props} /> : <AssistantTurn key={m.id} message={m} {...props} />,
      )}
      <div ref={end} />
    </ol>
  );
}

function UserTurn({ message, thumbnailUrl, images, modelInput }: { message: UserMessage } & MessageListProps) {
  return (
    <li className="ml-auto flex max-w-[80%] flex-col items-end gap-2">
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
      {message.text && <p className="whitespace-pre-wrap rounded-2xl bg-sky-600 px-4 py-2 text-white">{message.text}</p>}
    </li>
  );
}

const STATUS_NOTE = { interrupted: 'Stopped before the end.', error: 'The answer failed.' } as const;

function AssistantTurn({
  message,
  onRegenerate,
  onSelectVersion,
  onInspect,
  copy = (t) => navigator.clipboard.writeText(t),
}: { message: AssistantMessage } & MessageListProps) {
  const version = currentVersion(message);
  const streaming = version.status === 'streaming';
  const [copied, setCopied] = useState(false);
  const action =
    'rounded px-2 py-0.5 text-xs text-zinc-500 hover:bg-zinc-100 hover:text-zinc-900 disabled:opacity-40 dark:hover:bg-zinc-800 dark:hover:text-zinc-100';

  return (
    <li className="flex max-w-[85%] flex-col gap-1" aria-busy={streaming} data-status={version.status}>
      <p className="whitespace-pre-wrap leading-relaxed" data-testid="answer-text">
        {version.text}
        {streaming && <span aria-hidden className="ml-0.5 inline-block h-4 w-2 animate-pulse bg-zinc-400 align-middle" />}
      </p>
      {version.status !== 'done' && version.status !== 'streaming' && (
        <p
          role={version.status === 'error' ? 'alert' : undefined}
          className={`text-xs ${version.status === 'error' ? 'text-red-600' : 'text-amber-600'}`}
        >
          {STATUS_NOTE[version.status]} {version.error}
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
              {version.method && ` · ${version.method}`}
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
        {onInspect && version.traceId && (
          <button type="button" className={action} onClick={() => onInspect(message.id, version.traceId!)}>
            Inspect pruning
          </button>
        )}
      </div>
    </li>
  );
}
