import type { Rng } from './rng.js';
import { COLOUR_NAMES, SHAPES, type Colour, type Scene, type SceneObject, type Shape } from './scene.js';

/** Question families, each with one-word answers. */
export const FAMILIES = ['colour', 'shape', 'count', 'exist', 'position', 'label'] as const;
export type Family = (typeof FAMILIES)[number];

export interface Ref {
  colour: Colour;
  shape: Shape;
}

/** A question as structure; `phrase` turns it into text and `answerQuery` answers it from the scene graph. */
export type Query =
  | { family: 'colour'; shape: Shape }
  | { family: 'shape'; colour: Colour }
  | { family: 'count'; shape?: Shape; colour?: Colour }
  | { family: 'exist'; ref: Ref }
  | { family: 'position'; a: Ref; b: Ref }
  | { family: 'label'; ref: Ref };

/** A relative position counts only when one axis dominates by this factor and the gap is clear. */
const POSITION_DOMINANCE = 2;
const POSITION_MIN_PX = 24;

export function phrase(q: Query): string {
  switch (q.family) {
    case 'colour':
      return `What color is the ${q.shape}?`;
    case 'shape':
      return `What shape is the ${q.colour} object?`;
    case 'count':
      if (q.shape) return `How many ${q.shape}s are there?`;
      if (q.colour) return `How many ${q.colour} objects are there?`;
      return 'How many objects are there?';
    case 'exist':
      return `Is there ${article(q.ref.colour)} ${q.ref.colour} ${q.ref.shape} in the image?`;
    case 'position':
      return `Is the ${q.a.colour} ${q.a.shape} left of, right of, above or below the ${q.b.colour} ${q.b.shape}?`;
    case 'label':
      return `What is written on the ${q.ref.colour} ${q.ref.shape}?`;
  }
}

/** The one-word answer, or null when the question is ill-posed for this scene (no unique referent, ambiguous layout). */
export function answerQuery(scene: Scene, q: Query): string | null {
  const objs = scene.objects;
  switch (q.family) {
    case 'colour':
      return unique(objs.filter((o) => o.shape === q.shape))?.colour ?? null;
    case 'shape':
      return unique(objs.filter((o) => o.colour === q.colour))?.shape ?? null;
    case 'count':
      return String(objs.filter((o) => (!q.shape || o.shape === q.shape) && (!q.colour || o.colour === q.colour)).length);
    case 'exist':
      return objs.some((o) => matches(o, q.ref)) ? 'yes' : 'no';
    case 'position': {
      const a = find(scene, q.a);
      const b = find(scene, q.b);
      return a && b && a !== b ? relation(a, b) : null;
    }
    case 'label':
      return find(scene, q.ref)?.label?.toLowerCase() ?? null;
  }
}

/** Where a is relative to b, if one axis clearly dominates (image y points down). */
export function relation(a: SceneObject, b: SceneObject): 'left' | 'right' | 'above' | 'below' | null {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  if (Math.abs(dx) >= POSITION_DOMINANCE * Math.abs(dy) && Math.abs(dx) >= POSITION_MIN_PX) return dx < 0 ? 'left' : 'right';
  if (Math.abs(dy) >= POSITION_DOMINANCE * Math.abs(dx) && Math.abs(dy) >= POSITION_MIN_PX) return dy < 0 ? 'above' : 'below';
  return null;
}

/**
 * A random well-posed query of `family` for the scene, or null if the scene has none.
 * For `exist`, `wantYes` fixes the answer so the family stays balanced; absent objects are
 * POPE-style: half the time adversarial (its colour and its shape each appear, but not together).
 */
export function sampleQuery(scene: Scene, family: Family, rng: Rng, wantYes = true): Query | null {
  const objs = scene.objects;
  const refs = objs.filter((o) => find(scene, o) === o).map(refOf);
  switch (family) {
    case 'colour':
      return maybePick(
        rng,
        SHAPES.filter((s) => objs.filter((o) => o.shape === s).length === 1).map((shape) => ({ family, shape })),
      );
    case 'shape':
      return maybePick(
        rng,
        COLOUR_NAMES.filter((c) => objs.filter((o) => o.colour === c).length === 1).map((colour) => ({ family, colour })),
      );
    case 'count': {
      // Mostly attributes that are present, so answers are not dominated by 0.
      const form = rng.int(0, 2);
      const present = rng.chance(0.8);
      if (form === 0) return { family };
      if (form === 1) return { family, shape: present ? rng.pick(objs).shape : rng.pick(SHAPES) };
      return { family, colour: present ? rng.pick(objs).colour : rng.pick(COLOUR_NAMES) };
    }
    case 'exist': {
      if (wantYes)
        return maybePick(
          rng,
          objs.map((o) => ({ family, ref: refOf(o) })),
        );
      const absent = SHAPES.flatMap((shape) => COLOUR_NAMES.map((colour) => ({ colour, shape }))).filter(
        (r) => !objs.some((o) => matches(o, r)),
      );
      const adversarial = absent.filter((r) => objs.some((o) => o.colour === r.colour) && objs.some((o) => o.shape === r.shape));
      const pool = adversarial.length > 0 && rng.chance(0.5) ? adversarial : absent;
      return maybePick(
        rng,
        pool.map((ref) => ({ family, ref })),
      );
    }
    case 'position': {
      const pairs = refs.flatMap((a) => refs.filter((b) => b !== a).map((b) => ({ family, a, b }) as const));
      return maybePick(
        rng,
        pairs.filter((p) => answerQuery(scene, p) !== null),
      );
    }
    case 'label':
      return maybePick(
        rng,
        refs.filter((r) => find(scene, r)?.label).map((ref) => ({ family, ref })),
      );
  }
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** The object a colour+shape reference names, if exactly one matches. */
export function find(scene: Scene, ref: Ref): SceneObject | null {
  return unique(scene.objects.filter((o) => matches(o, ref)));
}

function matches(o: SceneObject, ref: Ref): boolean {
  return o.colour === ref.colour && o.shape === ref.shape;
}

function refOf(o: SceneObject): Ref {
  return { colour: o.colour, shape: o.shape };
}

function unique<T>(items: T[]): T | null {
  return items.length === 1 ? items[0] : null;
}

function maybePick<T>(rng: Rng, items: T[]): T | null {
  return items.length > 0 ? rng.pick(items) : null;
}
