import type { Rng } from './rng.js';

/** The scene graph: everything the image shows and every answer is computed from. */
export const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon'] as const;
export type Shape = (typeof SHAPES)[number];

export type Rgb = readonly [number, number, number];

/** Saturated object colours; backgrounds are kept desaturated so objects always stand out. */
export const COLOURS = {
  red: [220, 38, 38],
  green: [34, 170, 60],
  blue: [37, 84, 222],
  yellow: [245, 212, 30],
  purple: [140, 58, 196],
  orange: [246, 134, 24],
  cyan: [30, 200, 215],
} as const satisfies Record<string, Rgb>;
export type Colour = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];

/** Circumradius in pixels at the 336 px canvas. */
export const SIZES = { small: 19, medium: 29, large: 41 } as const;
export type Size = keyof typeof SIZES;
export const SIZE_NAMES = Object.keys(SIZES) as Size[];

/** Characters that can be written on an object (drawn with our own stroke font, see glyphs.ts). */
export const LABEL_CHARS = '0123456789ACEFHKLPTX';
/** Shapes with room inside for a label; labels go on medium and large objects only, to stay legible. */
const LABELABLE: ReadonlySet<Shape> = new Set(['circle', 'square', 'diamond', 'hexagon']);
/** Largest rotation per shape, in degrees: small enough that a square never looks like a diamond. */
const MAX_ROTATION: Record<Shape, number> = { circle: 0, square: 15, triangle: 20, star: 15, diamond: 10, hexagon: 15 };

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  /** Centre in pixels, y pointing down. */
  x: number;
  y: number;
  /** Rotation in degrees, clockwise. */
  rotation: number;
  label?: string;
}

export const BACKGROUNDS = ['noise', 'stripes', 'gradient', 'checker'] as const;
export type BackgroundKind = (typeof BACKGROUNDS)[number];

export interface Background {
  kind: BackgroundKind;
  base: Rgb;
  accent: Rgb;
  /** Stripe/checker period or noise cell size in pixels. */
  period: number;
  /** Stripe or gradient angle in degrees. */
  angle: number;
  /** Seed of the per-pixel noise added on top of every kind. */
  noiseSeed: number;
}

export interface Scene {
  size: number;
  background: Background;
  objects: SceneObject[];
}

export const CANVAS = 336;
const MARGIN = 4;
const GAP = 6;
const PLACEMENT_TRIES = 60;

export function radius(o: Pick<SceneObject, 'size'>): number {
  return SIZES[o.size];
}

export function canHoldLabel(o: Pick<SceneObject, 'shape' | 'size'>): boolean {
  return LABELABLE.has(o.shape) && o.size !== 'small';
}

/** A random scene of 1-8 objects placed without overlap; objects that find no room are dropped. */
export function sampleScene(rng: Rng): Scene {
  const wanted = rng.int(1, 8);
  const objects: SceneObject[] = [];
  for (let i = 0; i < wanted; i++) {
    const shape = rng.pick(SHAPES);
    const colour = rng.pick(COLOUR_NAMES);
    const size = rng.pick(SIZE_NAMES);
    const label = canHoldLabel({ shape, size }) && rng.chance(0.5) ? rng.pick([...LABEL_CHARS]) : undefined;
    const placed = place(rng, objects, SIZES[size]);
    if (!placed) continue;
    objects.push({
      shape,
      colour,
      size,
      ...placed,
      rotation: rng.int(-MAX_ROTATION[shape], MAX_ROTATION[shape]),
      ...(label ? { label } : {}),
    });
  }
  return { size: CANVAS, background: sampleBackground(rng), objects };
}

function place(rng: Rng, others: readonly SceneObject[], r: number): { x: number; y: number } | null {
  for (let t = 0; t < PLACEMENT_TRIES; t++) {
    const x = Math.round(rng.range(r + MARGIN, CANVAS - r - MARGIN));
    const y = Math.round(rng.range(r + MARGIN, CANVAS - r - MARGIN));
    if (others.every((o) => Math.hypot(o.x - x, o.y - y) >= radius(o) + r + GAP)) return { x, y };
  }
  return null;
}

function sampleBackground(rng: Rng): Background {
  const hue = rng.range(0, 360);
  const base = hsl(hue, rng.range(0.05, 0.25), rng.range(0.35, 0.7));
  const accent = hsl(hue + rng.range(-60, 60), rng.range(0.05, 0.25), rng.range(0.3, 0.75));
  return {
    kind: rng.pick(BACKGROUNDS),
    base,
    accent,
    period: rng.int(6, 28),
    angle: rng.int(0, 179),
    noiseSeed: rng.int(1, 2 ** 31 - 1),
  };
}

function hsl(hueDeg: number, s: number, l: number): Rgb {
  const h = (((hueDeg % 360) + 360) % 360) / 60;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs((h % 2) - 1));
  const [r, g, b] = h < 1 ? [c, x, 0] : h < 2 ? [x, c, 0] : h < 3 ? [0, c, x] : h < 4 ? [0, x, c] : h < 5 ? [x, 0, c] : [c, 0, x];
  const m = l - c / 2;
  return [r, g, b].map((v) => Math.round((v + m) * 255)) as unknown as Rgb;
}
