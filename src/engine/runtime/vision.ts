import type { VisualLayout } from '../../shared/trace.js';
import { packVisualTokens, type PreparedImage } from '../image/anyres.js';
import { encodeImage, type ModelSessions } from './graphs.js';
import type { VisualTokens } from './prefill.js';

/** The visual tokens of one prepared image, with where each came from and how many views the vision tower ran. */
export interface EncodedVisual extends VisualTokens {
  layout: VisualLayout;
  views: number;
}

/**
 * Runs the vision tower (and projector) on every view. One view: its features are the tokens. Several
 * (LLaVA-NeXT): they are packed in the layout's order, with the checkpoint's image_newline between rows.
 */
export async function encodeVisual(model: ModelSessions, image: PreparedImage): Promise<EncodedVisual> {
  const { views, viewSize, layout } = image;
  if (views.length === 1 && !layout.tokens.kind.includes('newline')) {
    const { features, count } = await encodeImage(model, views[0], viewSize);
    return { features, count, layout, views: 1 };
  }
  const first = await encodeImage(model, views[0], viewSize, true);
  const features = [first.features];
  for (const view of views.slice(1)) features.push((await encodeImage(model, view, viewSize)).features);
  const dim = first.features.length / first.count;
  return {
    features: packVisualTokens(layout, features, first.newline!, dim),
    count: layout.tokens.kind.length,
    layout,
    views: views.length,
  };
}
