import { useRef, useState, type ClipboardEvent, type DragEvent, type FormEvent, type KeyboardEvent } from 'react';
import type { StoredImage } from '../../../shared/conversation.js';
import { ErrorText } from '../common/ErrorText.js';

export interface Attachment {
  image: StoredImage;
  thumbnailUrl: string;
}

interface ComposerProps {
  attachments: Attachment[];
  /** An answer is streaming: Send becomes Stop. */
  busy: boolean;
  /** Why nothing can be sent right now (no model loaded, engine restarting...). */
  disabledReason?: string;
  /** Every way an image comes in (drop, paste, picker) ends here; main validates and stores it. Rejects with a message for the user. */
  onAttach(files: File[]): Promise<void>;
  onRemoveAttachment(imageId: string): void;
  onSend(text: string): void;
  onStop(): void;
}

const ACCEPT = 'image/png,image/jpeg,image/webp';

/** Question box with image intake by drag-and-drop, paste and file picker. Enter sends, Shift+Enter breaks the line. */
export function Composer({ attachments, busy, disabledReason, onAttach, onRemoveAttachment, onSend, onStop }: ComposerProps) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [dragDepth, setDragDepth] = useState(0);
  const picker = useRef<HTMLInputElement>(null);
  const canSend = !busy && !disabledReason && (text.trim() !== '' || attachments.length > 0);

  async function attach(files: File[]) {
    if (files.length === 0) return;
    setError(null);
    try {
      await onAttach(files);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  function send(event?: FormEvent) {
    event?.preventDefault();
    if (!canSend) return;
    onSend(text.trim());
    setText('');
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) send(event);
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
                className="h-16 w-16 rounded-md object-cover"
              />
              <button
                type="button"
                aria-label="Remove image"
                onClick={() => onRemoveAttachment(image.id)}
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
        placeholder={dragDepth > 0 ? 'Drop the image to attach it' : 'Ask about the image… (drop or paste one here)'}
        className="resize-none bg-transparent px-2 py-1 outline-none"
      />
      <ErrorText message={error} className="px-2" />
      {disabledReason && <p className="px-2 text-sm text-amber-600">{disabledReason}</p>}
      <div className="flex items-center justify-between">
        <button
          type="button"
          onClick={() => picker.current?.click()}
          className="rounded-md px-2 py-1 text-sm text-zinc-600 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
        >
          Attach image…
        </button>
        <input
          ref={picker}
          type="file"
          accept={ACCEPT}
          multiple
          hidden
          aria-label="Choose images"
          onChange={(e) => {
            void attach([...(e.target.files ?? [])]);
            e.target.value = '';
          }}
        />
        {busy ? (
          <button
            type="button"
            onClick={onStop}
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
