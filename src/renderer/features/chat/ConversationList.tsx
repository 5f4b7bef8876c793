import { useState, type FormEvent } from 'react';
import type { ConversationSummary } from '../../../shared/conversation.js';

interface ConversationListProps {
  conversations: ConversationSummary[];
  activeId?: string;
  query: string;
  onQueryChange(query: string): void;
  onSelect(id: string): void;
  onNew(): void;
  onRename(id: string, title: string): void;
  onDelete(id: string): void;
  /** A conversation file made by Export JSON, to add as a new conversation. */
  onImport?(file: File): void;
}

/** The sidebar: new chat, search, importing a conversation file, and the conversations with rename and delete. */
export function ConversationList({
  conversations,
  activeId,
  query,
  onQueryChange,
  onSelect,
  onNew,
  onRename,
  onDelete,
  onImport,
}: ConversationListProps) {
  return (
    <div className="flex h-full flex-col gap-2">
      <button
        type="button"
        onClick={onNew}
        className="rounded-md bg-sky-600 px-3 py-2 text-sm font-medium text-white hover:bg-sky-700 focus-visible:outline-2 focus-visible:outline-sky-400"
      >
        New chat
      </button>
      <input
        type="search"
        aria-label="Search conversations"
        placeholder="Search conversations"
        value={query}
        onChange={(e) => onQueryChange(e.target.value)}
        className="rounded-md border border-zinc-300 bg-transparent px-2 py-1.5 text-sm dark:border-zinc-600"
      />
      {onImport && (
        <label className="cursor-pointer self-start rounded px-1 text-xs text-zinc-500 hover:text-zinc-900 hover:underline dark:hover:text-zinc-100">
          Import conversation…
          <input
            type="file"
            accept="application/json,.json"
            className="sr-only"
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = '';
              if (file) onImport(file);
            }}
          />
        </label>
      )}
      {conversations.length === 0 ? (
        <p className="px-1 text-sm text-zinc-500">
          {query ? `No conversation mentions “${query}”.` : 'No conversations yet. Drop an image to start one.'}
        </p>
      ) : (
        <ul className="flex-1 space-y-0.5 overflow-y-auto">
          {conversations.map((c) => (
            <ConversationItem
              key={c.id}
              conversation={c}
              active={c.id === activeId}
              onSelect={onSelect}
              onRename={onRename}
              onDelete={onDelete}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

interface ConversationItemProps {
  conversation: ConversationSummary;
  active: boolean;
  onSelect(id: string): void;
  onRename(id: string, title: string): void;
  onDelete(id: string): void;
}

function ConversationItem({ conversation, active, onSelect, onRename, onDelete }: ConversationItemProps) {
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [title, setTitle] = useState(conversation.title);
  const iconButton =
    'rounded px-1.5 text-xs text-zinc-500 hover:bg-zinc-200 hover:text-zinc-900 dark:hover:bg-zinc-700 dark:hover:text-zinc-100';

  function submit(event: FormEvent) {
    event.preventDefault();
    if (title.trim()) onRename(conversation.id, title.trim());
    setEditing(false);
  }

  if (editing) {
    return (
      <li>
        <form onSubmit={submit} className="flex gap-1">
          <input
            // biome-ignore lint/a11y/noAutofocus: the field appears because the user just asked to rename, so typing goes there
            autoFocus
            aria-label="New title"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            onKeyDown={(e) => {
              if (e.key !== 'Escape') return;
              setTitle(conversation.title);
              setEditing(false);
            }}
            className="min-w-0 flex-1 rounded border border-sky-500 bg-transparent px-1.5 py-1 text-sm"
          />
          <button type="submit" className={iconButton}>
            Save
          </button>
        </form>
      </li>
    );
  }

  return (
    <li className={`group relative rounded-md ${active ? 'bg-zinc-200 dark:bg-zinc-800' : 'hover:bg-zinc-100 dark:hover:bg-zinc-900'}`}>
      <button
        type="button"
        aria-current={active ? 'page' : undefined}
        onClick={() => onSelect(conversation.id)}
        title={conversation.title}
        className="block w-full truncate rounded-md px-2 py-1.5 text-left text-sm"
      >
        {conversation.title}
      </button>
      {conversation.match && (
        <p data-testid="search-match" className="truncate px-2 pb-1 text-xs text-zinc-500" title={conversation.match}>
          {conversation.match}
        </p>
      )}
      {/* Over the title's end, shown on hover or keyboard focus only, so at rest the whole width is the title's. */}
      <div
        className={`absolute inset-y-0 right-0 flex items-center gap-0.5 rounded-r-md bg-inherit pl-1 pr-0.5 ${confirming ? '' : 'opacity-0 group-focus-within:opacity-100 group-hover:opacity-100'}`}
      >
        {confirming ? (
          <>
            <button
              type="button"
              className={`${iconButton} text-red-600`}
              onClick={() => onDelete(conversation.id)}
              aria-label={`Confirm delete ${conversation.title}`}
            >
              Delete
            </button>
            <button type="button" className={iconButton} onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <>
            <button
              type="button"
              className={iconButton}
              onClick={() => {
                setTitle(conversation.title);
                setEditing(true);
              }}
              aria-label={`Rename ${conversation.title}`}
            >
              Rename
            </button>
            <button type="button" className={iconButton} onClick={() => setConfirming(true)} aria-label={`Delete ${conversation.title}`}>
              ✕
            </button>
          </>
        )}
      </div>
    </li>
  );
}
