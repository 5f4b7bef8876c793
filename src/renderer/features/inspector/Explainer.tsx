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
 * mean, why tokens are dropped at these layers, and what the method that ran measures (only that one).
 */
export function Explainer({ view }: { view: TraceView }) {
  const { rows, cols } = view.grid;
  const tiles = view.layout?.tiles.filter((t) => t.kind === 'tile').length ?? 0;
  const cutInto = view.layout
    ? `the whole image and ${tiles} tiles of it, each cut into patches (and a newline token after each row of a tile)`
    : `a ${rows}×${cols} grid of patches`;
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
          ? `${methodLabel(view.method)} dropped tokens ${stages}.`
          : 'Nothing was dropped inside the language model: every layer read every token it was given.'}
      </p>
      {view.projectorPruned && (
        <p>
          <strong>DivPrune</strong> chose a varied subset of the image tokens before the language model saw any of them, so that the tokens
          kept cover different parts of the picture rather than many near-copies.
        </p>
      )}
      <MethodScores kind={view.methodKind} />
      <p>
        Slide through the layers: clear patches are still read at that layer, dark ones were dropped before it. Hover a patch for its scores
        and rank.
      </p>
    </section>
  );
}

/** What the method that ran looks at when it decides which tokens to drop. */
function MethodScores({ kind }: { kind: TraceView['methodKind'] }) {
  switch (kind) {
    case 'transprune':
      return (
        <>
          <p>
            The first layers keep every token: they still mix the picture into the text, and scores taken there are not yet reliable.{' '}
            <strong>TTV</strong> (token transition variation): how much a token still changes as it passes through a layer, in size and
            direction. A token the model is still working on changes a lot; one it is done with hardly moves.
          </p>
          <p>
            <strong>IGA</strong> (instruction-guided attention): how strongly the words of the question attend to each image token. The
            combined score mixes the two; the lowest-ranked tokens are dropped.
          </p>
        </>
      );
    case 'fastv':
      return (
        <p>
          <strong>FastV</strong> looks once, after an early layer, at how much attention the last token of the prompt pays to each image
          token, and drops the least-attended share for the rest of the layers.
        </p>
      );
    case 'pdrop':
      return (
        <p>
          <strong>PDrop</strong> drops tokens in stages, like a pyramid: at the end of each stage it ranks the image tokens by the attention
          the last token of the prompt pays to them and keeps a shrinking share.
        </p>
      );
    case 'random':
      return (
        <p>
          <strong>Random</strong> keeps as many tokens as TransPrune would at the same layers, but picks them by chance: the baseline that
          shows what a score adds.
        </p>
      );
    case 'none':
      return null;
  }
}
