import type { StoredImage } from '../../../shared/conversation.js';

/** How the current model turns any image into visual tokens. */
export interface ModelInputView {
  /** Side of the square the vision tower takes, in pixels. */
  resolution: number;
  patchSize: number;
  /** Visual tokens the vision tower produces (before any pruning). */
  visualTokens: number;
  resizePolicy: 'pad' | 'crop' | 'stretch';
}

const POLICY_TEXT = {
  pad: 'padded to a square with the mean colour, then resized',
  crop: 'resized so the short side fits, then centre-cropped',
  stretch: 'stretched to a square',
} as const;

/** "What the model sees": a disclosure next to an image with the resolution, token count and resize policy. */
export function WhatModelSees({ image, model }: { image: StoredImage; model: ModelInputView }) {
  const scale =
    model.resizePolicy === 'crop'
      ? model.resolution / Math.min(image.width, image.height)
      : model.resolution / Math.max(image.width, image.height);
  const grid = model.resolution / model.patchSize;
  return (
    <details className="relative text-xs">
      <summary className="cursor-pointer select-none text-sky-700 hover:underline dark:text-sky-400">What the model sees</summary>
      <div
        role="note"
        className="absolute right-0 z-10 mt-1 w-72 max-w-[calc(100vw-2rem)] rounded-md border border-zinc-200 bg-white p-3 shadow-lg dark:border-zinc-700 dark:bg-zinc-900"
      >
        <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1">
          <dt className="text-zinc-500">Your image</dt>
          <dd>
            {image.width}×{image.height}
          </dd>
          <dt className="text-zinc-500">Model input</dt>
          <dd>
            {model.resolution}×{model.resolution} ({POLICY_TEXT[model.resizePolicy]})
          </dd>
          <dt className="text-zinc-500">Scale</dt>
          <dd>{scale >= 1 ? `enlarged ${scale.toFixed(2)}×` : `reduced to ${Math.round(scale * 100)}%`}</dd>
          <dt className="text-zinc-500">Visual tokens</dt>
          <dd>
            {model.visualTokens} ({grid}×{grid} patches of {model.patchSize} px)
          </dd>
        </dl>
      </div>
    </details>
  );
}
