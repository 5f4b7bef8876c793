import { useEffect, useRef, useState, type ClipboardEvent, type DragEvent, type FormEvent, type KeyboardEvent } from 'react';
import type { StoredImage } from '../../../shared/conversation.js';
import { IMAGE_ACCEPT } from '../../../shared/images.js';

export interface Attachment {
  image: StoredImage;
  thumbnailUrl: string;
}

interface ComposerProps {
  /** The image the question is about: none, or one (LLaVA-1.5 takes one image per question). */
  attachments: Attachment[];
  /** An answer is streaming: Send becomes Stop, and Esc stops it. */
  busy: boolean;
  /** Why nothing can be sent right now (no model loaded, engine restarting...). */
  disabledReason?: string;
  /** Why no image can be attached (the model in use is text only); questions still go. */
  noImageReason?: string;
  /** Every way an image comes in (drop, paste, picker) ends here; main validates and stores it. Rejects with a message for the user. */
  onAttach(file: File): Promise<void>;
  onRemoveAttachment(imageId: string): void;
  /** Resolves true once the question is on its way; until then (and on false) the typed text stays. */
  onSend(text: string): Promise<boolean>;
  onStop(): void;
}

const ONE_IMAGE = 'LLaVA-1.5 answers about one image per question';

/**
 * Question box with image intake by drag-and-drop, paste and file picker, one image per question.
 * Enter sends, Shift+Enter breaks the line, Esc stops a streaming answer.
 */
export function Composer({
  attachments,
  busy,
  disabledReason,
  noImageReason,
  onAttach,
  onRemoveAttachment,
  onSend,
  onStop,
}: ComposerProps) {
  const [text, setText] = useState('');
  // An image that was not accepted holds the question back: sent without it, the answer would not be about it.
  const [rejected, setRejected] = useState<{ name: string; reason: string } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [dragDepth, setDragDepth] = useState(0);
  const picker = useRef<HTMLInputElement>(null);
  const canSend = !busy && !sending && !disabledReason && !rejected && (text.trim() !== '' || attachments.length > 0);

  useStopOnEscape(busy, onStop);

  async function attach(files: File[]) {
    if (files.length === 0) return;
    if (noImageReason) {
      setNote(noImageReason);
      return;
    }
    const replacing = attachments.length > 0;
    try {
      await onAttach(files[0]);
      setRejected(null);
      setNote(
        files.length > 1
          ? `${ONE_IMAGE}: attached the first of the ${files.length}.`
          : replacing
            ? `${ONE_IMAGE}: replaced the earlier image.`
            : null,
      );
    } catch (err) {
      setNote(null);
      setRejected({ name: files[0].name, reason: (err as Error).message });
    }
  }

  async function send(event?: FormEvent) {
    event?.preventDefault();
    if (!canSend) return;
    setSending(true);
    try {
      if (await onSend(text.trim())) {
        setText('');
        setNote(null);
      }
    } finally {
      setSending(false);
    }
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) void send(event);
  }

  function onPaste(event: ClipboardEvent) {
    const files = [...event.clipboardData.files].filter((f) => f.type.startsWith('image/'));
    if (files.length === 0) return;
    event.preventDefault();
    void attach(files);
  }

  // A depth counter, because dragenter/dragleave fire for every child the pointer crosses.
  const drag = {
    onDragEnter: (e: DragEvent) => {
      e.preventDefault();
      setDragDepth((d) => d + 1);
    },
    onDragLeave: (e: DragEvent) => {
      e.preventDefault();
      setDragDepth((d) => Math.max(0, d - 1));
    },
    onDragOver: (e: DragEvent) => e.preventDefault(),
    onDrop: (e: DragEvent) => {
      e.preventDefault();
      setDragDepth(0);
      void attach([...e.dataTransfer.files]);
    },
  };

  return (
    <form
      onSubmit={send}
      {...drag}
      data-testid="composer"
      aria-label="Ask about an image"
      className={`m-3 flex flex-col gap-2 rounded-xl border p-2 ${dragDepth > 0 ? 'border-sky-500 bg-sky-50 dark:bg-sky-950' : 'border-zinc-300 dark:border-zinc-700'}`}
    >
      {attachments.length > 0 && (
        <ul aria-label="Attached images" className="flex flex-wrap gap-2">
          {attachments.map(({ image, thumbnailUrl }) => (
            <li key={image.id} className="relative">
              <img
                src={thumbnailUrl}
                alt={`Attached ${image.width}×${image.height} ${image.format.toUpperCase()}`}
                className="h-12 w-12 rounded-md object-cover"
              />
              <button
                type="button"
                aria-label="Remove image"
                onClick={() => {
                  setNote(null);
                  onRemoveAttachment(image.id);
                }}
                className="absolute -right-1.5 -top-1.5 h-5 w-5 rounded-full bg-zinc-800 text-xs leading-5 text-white"
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <label htmlFor="composer-text" className="sr-only">
        Question
      </label>
      <textarea
        id="composer-text"
        rows={2}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        onPaste={onPaste}
        maxLength={20_000}
        placeholder={
          dragDepth > 0 && !noImageReason
            ? 'Drop the image to attach it'
            : noImageReason
              ? 'Ask a question…'
              : 'Ask a question, or drop or paste an image to ask about it…'
        }
        className="resize-none bg-transparent px-2 py-1 outline-none"
      />
      {note && (
        <p role="status" data-testid="composer-note" className="px-2 text-sm text-zinc-600 dark:text-zinc-300">
          {note}
        </p>
      )}
      {rejected && (
        <div role="alert" className="flex items-start gap-2 px-2 text-sm text-red-600 dark:text-red-400">
          <p className="min-w-0 flex-1 wrap-anywhere">
            {rejected.name || 'The image'} was not attached: {rejected.reason} The question waits until you remove it or attach another
            image.
          </p>
          <button
            type="button"
            onClick={() => setRejected(null)}
            className="shrink-0 rounded-md border border-red-300 px-2 py-0.5 text-xs dark:border-red-800"
          >
            Remove
          </button>
        </div>
      )}
      {disabledReason && <p className="px-2 text-sm text-amber-600">{disabledReason}</p>}
      <div className="flex items-center justify-between">
        <button
          type="button"
          onClick={() => picker.current?.click()}
          disabled={noImageReason !== undefined}
          title={noImageReason}
          className="rounded-md px-2 py-1 text-sm text-zinc-600 hover:bg-zinc-100 disabled:cursor-not-allowed disabled:opacity-50 dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          {noImageReason ? 'No images: text-only model' : 'Attach image…'}
        </button>
        <input
          ref={picker}
          type="file"
          accept={IMAGE_ACCEPT}
          hidden
          aria-label="Choose an image"
          onChange={(e) => {
            void attach([...(e.target.files ?? [])]);
            e.target.value = '';
          }}
        />
        {busy ? (
          <button
            type="button"
            onClick={onStop}
            title="Stop (Esc)"
            aria-keyshortcuts="Escape"
            className="rounded-md bg-zinc-800 px-4 py-1.5 text-sm font-medium text-white dark:bg-zinc-200 dark:text-zinc-900"
          >
            Stop
          </button>
        ) : (
          <button
            type="submit"
            disabled={!canSend}
            className="rounded-md bg-sky-600 px-4 py-1.5 text-sm font-medium text-white disabled:opacity-40"
          >
            Send
          </button>
        )}
      </div>
    </form>
  );
}

/** While an answer streams, Esc stops it wherever the focus is (a dialog that handles Esc itself calls preventDefault). */
function useStopOnEscape(busy: boolean, stop: () => void): void {
  const latest = useRef(stop);
  latest.current = stop;
  useEffect(() => {
    if (!busy) return;
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape' && !event.defaultPrevented) latest.current();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [busy]);
}
