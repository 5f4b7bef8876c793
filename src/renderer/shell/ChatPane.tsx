import { useId, useState, type FormEvent } from 'react';
import type { EngineStatus, ModelSummary } from '../../shared/ipc.js';
import { engineStatusText } from './EngineStatusBadge.js';
import { isEngineUp } from './client-context.js';

export interface ChatPaneProps {
  status: EngineStatus | undefined;
  models: ModelSummary[] | undefined;
  /** Sends a question; until the chat feature provides it, the input says so instead of pretending. */
  onSend?: (text: string, images: File[]) => void;
}

/** Why the composer cannot send right now, or null when it can. */
export function composerBlocker({ status, models, onSend }: ChatPaneProps): string | null {
  if (!isEngineUp(status)) return engineStatusText(status);
  if (models === undefined) return 'Loading models…';
  if (models.length === 0) return 'No model installed: import one with `npm run cli -- import`.';
  if (!onSend) return 'Chat is not available in this build yet.';
  return null;
}

/** The empty chat pane: messages area and the input box (image attach + question). */
export function ChatPane(props: ChatPaneProps) {
  const blocker = composerBlocker(props);
  const [text, setText] = useState('');
  const [images, setImages] = useState<File[]>([]);
  const reasonId = useId();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (blocker || !text.trim()) return;
    props.onSend?.(text.trim(), images);
    setText('');
    setImages([]);
  };

  return (
    <section aria-label="Chat" className="flex min-h-0 flex-1 flex-col">
      <div className="flex min-h-0 flex-1 items-center justify-center overflow-y-auto p-6 text-center text-zinc-500">
        <p>Drop an image and ask a question about it.</p>
      </div>
      <form onSubmit={submit} className="border-t border-zinc-200 p-4 dark:border-zinc-800">
        <div className="flex items-end gap-2">
          <label className="cursor-pointer rounded-md border border-zinc-300 px-3 py-2 text-sm has-disabled:cursor-not-allowed has-disabled:opacity-50 dark:border-zinc-700">
            <span>Attach image</span>
            <input
              type="file"
              accept="image/png,image/jpeg,image/webp"
              multiple
              className="sr-only"
              disabled={blocker !== null}
              aria-describedby={blocker ? reasonId : undefined}
              onChange={(e) => setImages(Array.from(e.target.files ?? []))}
            />
          </label>
          <textarea
            aria-label="Question"
            rows={2}
            value={text}
            disabled={blocker !== null}
            aria-describedby={blocker ? reasonId : undefined}
            placeholder="Ask about your image…"
            onChange={(e) => setText(e.target.value)}
            className="min-h-10 flex-1 resize-none rounded-md border border-zinc-300 bg-white px-3 py-2 text-sm disabled:opacity-50 dark:border-zinc-700 dark:bg-zinc-900"
          />
          <button
            type="submit"
            disabled={blocker !== null || !text.trim()}
            className="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white disabled:opacity-50"
          >
            Send
          </button>
        </div>
        {images.length > 0 && <p className="mt-2 text-xs text-zinc-500">{images.map((f) => f.name).join(', ')}</p>}
        {blocker && (
          <p id={reasonId} className="mt-2 text-xs text-zinc-500">
            {blocker}
          </p>
        )}
      </form>
    </section>
  );
}
