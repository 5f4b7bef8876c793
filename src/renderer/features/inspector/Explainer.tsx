import { methodLabel } from '../settings/methods.js';
import type { TraceView } from './traceView.js';

/** The question and answer a trace belongs to, above everything else in the inspector. */
export function ThisAnswer({ question, answer }: { question?: string; answer: string }) {
  return (
    <section aria-label="This answer" className="grid gap-x-3 gap-y-1 text-sm sm:grid-cols-[auto_minmax(0,1fr)]">
      <span className="text-zinc-500">Question</span>
      <p className="wrap-anywhere font-medium">{question ?? 'Not recorded (this trace was opened from a file).'}</p>
      <span className="text-zinc-500">Answer</span>
      <p className="line-clamp-2 wrap-anywhere" title={answer}>
        {answer || '(empty)'}
      </p>
    </section>
  );
}

/**
 * The inspector in plain words, for someone who never read the paper: what the grid and the shading
 * mean, why tokens are dropped at these layers, and what the scores measure.
 */
export function Explainer({ view }: { view: TraceView }) {
  const { rows, cols } = view.grid;
  const tiles = view.layout?.tiles.filter((t) => t.kind === 'tile').length ?? 0;
  const cutInto = view.layout
    ? `the whole image and ${tiles} tiles of it, each cut into patches (and a newline token after each row of a tile)`
    : `a ${rows}×${cols} grid of patches`;
  const kinds = new Set(view.steps.flatMap((step) => Object.keys(step.scores)));
  const stages = view.steps.map((s) => `after layer ${s.layer + 1} (${s.before} → ${s.kept.length})`).join(', ');
  return (
    <section
      aria-label="What you are looking at"
      className="space-y-1.5 rounded-lg border border-zinc-200 p-3 text-sm leading-relaxed text-zinc-700 dark:border-zinc-800 dark:text-zinc-300"
    >
      <h3 className="font-medium text-zinc-900 dark:text-zinc-100">What you are looking at</h3>
      <p>
        The image became {view.visualTokens} visual tokens, {cutInto}, which the language model reads with the question, layer after layer.
        Every token it keeps costs compute at every later layer.{' '}
        {view.steps.length > 0
          ? `${methodLabel(view.method)} dropped the tokens that mattered least for this question ${stages}. The first layers keep them all: they still mix the picture into the text, and scores taken there are not yet reliable.`
          : 'Nothing was dropped here: every layer read every token.'}
      </p>
      {kinds.has('ttv') && (
        <p>
          <strong>TTV</strong> (token transition variation): how much a token still changes as it passes through a layer, in size and
          direction. A token the model is still working on changes a lot; one it is done with hardly moves.
        </p>
      )}
      {kinds.has('iga') && (
        <p>
          <strong>IGA</strong> (instruction-guided attention): how strongly the words of the question attend to each image token.
          {kinds.has('combined') && ' The combined score mixes the two; the lowest-ranked tokens are dropped.'}
        </p>
      )}
      <p>
        Slide through the layers: clear patches are still read at that layer, dark ones were dropped before it. Hover a patch for its scores
        and rank.
      </p>
    </section>
  );
}
