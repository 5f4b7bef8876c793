import sharp from 'sharp';
import { glyphPath } from './glyphs.js';
import { Rng } from './rng.js';
import { COLOURS, radius, type Background, type Rgb, type Scene, type SceneObject } from './scene.js';

export type ImageFormat = 'jpeg' | 'png';

/** JPEG quality of the dataset: 300 test images stay under the 5 MB fixture budget. */
export const DEFAULT_QUALITY = 70;

/** Fine per-pixel noise on every background, so no background patch is flat. */
const PIXEL_NOISE = 8;

/** Renders a scene: background pixels painted here, objects drawn as SVG on top by sharp (librsvg). */
export async function renderScene(scene: Scene, format: ImageFormat = 'jpeg', quality = DEFAULT_QUALITY): Promise<Buffer> {
  const { size } = scene;
  const image = sharp(paintBackground(scene.background, size), { raw: { width: size, height: size, channels: 3 } }).composite([
    { input: Buffer.from(objectsSvg(scene)), top: 0, left: 0 },
  ]);
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality }).toBuffer();
}

export function paintBackground(bg: Background, size: number): Buffer {
  const out = Buffer.alloc(size * size * 3);
  const rng = new Rng(bg.noiseSeed);
  const cos = Math.cos((bg.angle * Math.PI) / 180);
  const sin = Math.sin((bg.angle * Math.PI) / 180);
  const cell = Math.max(2, Math.round(bg.period / 3));
  const cells = Math.ceil(size / cell);
  const cellValues = Float32Array.from({ length: cells * cells }, () => rng.next());
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const along = x * cos + y * sin;
      let t: number;
      switch (bg.kind) {
        case 'gradient':
          t = (along / (size * Math.SQRT2) + 1) / 2;
          break;
        case 'stripes':
          t = Math.floor(along / bg.period) & 1;
          break;
        case 'checker':
          t = (Math.floor(x / bg.period) + Math.floor(y / bg.period)) & 1;
          break;
        case 'noise':
          t = cellValues[Math.floor(y / cell) * cells + Math.floor(x / cell)];
          break;
      }
      const jitter = (rng.next() - 0.5) * 2 * PIXEL_NOISE;
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = clampByte(bg.base[c] + (bg.accent[c] - bg.base[c]) * t + jitter);
    }
  }
  return out;
}

export function objectsSvg(scene: Scene): string {
  const shapes = scene.objects.map(objectSvg).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.size}" height="${scene.size}">${shapes}</svg>`;
}

function objectSvg(o: SceneObject): string {
  const fill = rgb(COLOURS[o.colour]);
  const outline = `stroke="${rgb(darker(COLOURS[o.colour]))}" stroke-width="2"`;
  const body =
    o.shape === 'circle'
      ? `<circle cx="${o.x}" cy="${o.y}" r="${radius(o)}" fill="${fill}" ${outline}/>`
      : `<polygon points="${outlinePoints(o)}" fill="${fill}" ${outline}/>`;
  return body + (o.label ? labelSvg(o) : '');
}

/** Polygon vertices: unit-circle outlines scaled by the radius, rotated, moved to the centre. */
function outlinePoints(o: SceneObject): string {
  const r = radius(o);
  const turn = (o.rotation * Math.PI) / 180;
  return unitOutline(o.shape)
    .map(([ux, uy]) => {
      const x = o.x + r * (ux * Math.cos(turn) - uy * Math.sin(turn));
      const y = o.y + r * (ux * Math.sin(turn) + uy * Math.cos(turn));
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

function unitOutline(shape: SceneObject['shape']): Array<[number, number]> {
  const ring = (n: number, start: number, radii: number[] = [1]) =>
    Array.from({ length: n }, (_, i): [number, number] => {
      const a = start + (2 * Math.PI * i) / n;
      const r = radii[i % radii.length];
      return [r * Math.cos(a), r * Math.sin(a)];
    });
  switch (shape) {
    case 'square':
      return ring(4, Math.PI / 4);
    case 'triangle':
      return ring(3, -Math.PI / 2);
    case 'star':
      return ring(10, -Math.PI / 2, [1, 0.45]);
    case 'diamond':
      return ring(4, -Math.PI / 2).map(([x, y]) => [x * 0.62, y]);
    case 'hexagon':
      return ring(6, 0);
    case 'circle':
      throw new Error('a circle has no polygon outline');
  }
}

function labelSvg(o: SceneObject): string {
  const [r, g, b] = COLOURS[o.colour];
  const ink = 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#111' : '#fff';
  const height = radius(o) * 0.95;
  const d = glyphPath(o.label!, o.x, o.y, height);
  return `<path d="${d}" fill="none" stroke="${ink}" stroke-width="${(height / 7).toFixed(1)}" stroke-linecap="round" stroke-linejoin="round"/>`;
}

function rgb([r, g, b]: Rgb): string {
  return `rgb(${r},${g},${b})`;
}

function darker([r, g, b]: Rgb): Rgb {
  return [r * 0.6, g * 0.6, b * 0.6].map(Math.round) as unknown as Rgb;
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}
