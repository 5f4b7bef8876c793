import { useEffect, useState } from 'react';
import type { Sample } from '../../../shared/ipc-features.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/calls.js';
import type { Attachment } from './Composer.js';

interface SamplePickerProps {
  /** Why nothing can be asked right now; the buttons wait. */
  disabledReason?: string;
  onAsk(attachment: Attachment, question: string): void;
  onCompare(attachment: Attachment, question: string): void;
}

/**
 * The empty chat's first steps: sample images from the synthetic task the demo model learned, each with
 * a question, so one click gives a real answer or a compare (and from there the inspector).
 */
export function SamplePicker({ disabledReason, onAsk, onCompare }: SamplePickerProps) {
  const client = useClient();
  const [samples, setSamples] = useState<Sample[]>();
  useEffect(() => {
    callOrThrow(client, 'samples.list', {}).then(setSamples, () => setSamples([]));
  }, [client]);

  const hint = <p className="text-center text-zinc-500">Ask a question, or drop, paste or pick an image and ask about it.</p>;
  if (!samples?.length) return <div className="flex flex-1 items-center justify-center p-8">{hint}</div>;
  const button =
    'rounded-md border border-zinc-300 px-3 py-1 text-sm hover:bg-zinc-100 disabled:opacity-40 dark:border-zinc-600 dark:hover:bg-zinc-800';
  return (
    <section aria-label="Try a sample" className="flex min-h-0 flex-1 flex-col items-center gap-4 overflow-y-auto p-6">
      {hint}
      <h2 className="text-sm font-semibold text-zinc-600 dark:text-zinc-300">Or try a sample</h2>
      <ul className="grid w-full max-w-3xl grid-cols-[repeat(auto-fit,minmax(11rem,1fr))] gap-3">
        {samples.map(({ image, thumbnail, questions }) => {
          const attachment = { image, thumbnailUrl: thumbnail };
          return (
            <li key={image.id} className="flex flex-col gap-2 rounded-xl border border-zinc-200 p-3 dark:border-zinc-800">
              <img
                src={thumbnail}
                alt={`Sample for: ${questions[0]}`}
                className="aspect-square w-full max-w-32 self-center rounded-md object-cover sm:max-w-36 lg:max-w-44"
              />
              <p data-testid="sample-question" className="flex-1 text-sm">
                {questions[0]}
              </p>
              <div className="flex gap-2" title={disabledReason}>
                <button type="button" className={button} disabled={Boolean(disabledReason)} onClick={() => onAsk(attachment, questions[0])}>
                  Ask
                </button>
                <button
                  type="button"
                  className={button}
                  disabled={Boolean(disabledReason)}
                  onClick={() => onCompare(attachment, questions[0])}
                >
                  Compare
                </button>
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
