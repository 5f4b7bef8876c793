import { methodLabel } from '../settings/methods.js';
import { PAD_COLOUR, type TiledLayout, type TraceView } from './traceView.js';

/** Pruned patches as the overlay dims them. */
const PRUNED = 'rgba(10, 10, 10, 0.7)';
/** The band under the picture: what layer this is, the method, and what the shading means. */
export const CAPTION_HEIGHT = 56;

/**
 * Draws the overlay the inspector shows (image framed as the model saw it, pruned patches dimmed,
 * grid lines) with a caption band under it (layer, kept count, method, legend), and returns it as
 * PNG bytes, for "Export overlay". `layer` is 0-based.
 */
export async function renderOverlayPng(
  view: TraceView,
  present: boolean[],
  layer: number,
  imageUrl: string | undefined,
  size = 672,
): Promise<Uint8Array> {
  const image = imageUrl ? await loadImage(imageUrl) : undefined;
  const [width, height] = view.layout ? tiledSize(view.layout, size) : [size, size];
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height + CAPTION_HEIGHT;
  const context = canvas.getContext('2d');
  if (!context) throw new Error('This browser cannot draw to a canvas.');
  if (view.layout) drawTiledOverlay(context, view.layout, present, image, width, height);
  else drawGridOverlay(context, view, present, image, size);
  const kept = present.filter(Boolean).length;
  drawCaption(
    context,
    height,
    width,
    `Layer ${layer + 1} of ${view.numLayers} · ${kept} of ${view.visualTokens} visual tokens kept · ${methodLabel(view.method)}`,
  );
  return encodePng(canvas);
}

/** One view: the square the model saw, pruned patches dimmed, the grid drawn over it. */
function drawGridOverlay(
  context: CanvasRenderingContext2D,
  view: TraceView,
  present: boolean[],
  image: HTMLImageElement | undefined,
  size: number,
) {
  context.fillStyle = image && view.resizePolicy === 'pad' ? PAD_COLOUR : '#808080';
  context.fillRect(0, 0, size, size);
  if (image) drawFramed(context, image, view.resizePolicy, size);

  const { rows, cols } = view.grid;
  const cellW = size / cols;
  const cellH = size / rows;
  context.fillStyle = PRUNED;
  present.forEach((isPresent, patch) => {
    if (!isPresent) context.fillRect((patch % cols) * cellW, Math.floor(patch / cols) * cellH, cellW, cellH);
  });
  context.strokeStyle = 'rgba(255, 255, 255, 0.25)';
  context.lineWidth = 1;
  context.beginPath();
  for (let c = 1; c < cols; c++) {
    context.moveTo(c * cellW, 0);
    context.lineTo(c * cellW, size);
  }
  for (let r = 1; r < rows; r++) {
    context.moveTo(0, r * cellH);
    context.lineTo(size, r * cellH);
  }
  context.stroke();
}

/** The original image's size with its longest side `size` (LLaVA-NeXT's overlay). */
function tiledSize(layout: TiledLayout, size: number): [number, number] {
  const scale = size / Math.max(layout.imageWidth, layout.imageHeight);
  return [Math.round(layout.imageWidth * scale), Math.round(layout.imageHeight * scale)];
}

/** LLaVA-NeXT: the original image, pruned tile patches dimmed, tile boundaries outlined. */
function drawTiledOverlay(
  context: CanvasRenderingContext2D,
  layout: TiledLayout,
  present: boolean[],
  image: HTMLImageElement | undefined,
  width: number,
  height: number,
) {
  context.fillStyle = '#808080';
  context.fillRect(0, 0, width, height);
  if (image) context.drawImage(image, 0, 0, width, height);
  context.fillStyle = PRUNED;
  layout.tokens.forEach((t, patch) => {
    if (t.kind === 'tile' && !present[patch])
      context.fillRect(t.rect.x * width, t.rect.y * height, t.rect.width * width, t.rect.height * height);
  });
  context.strokeStyle = 'rgba(252, 211, 77, 0.9)';
  context.lineWidth = 2;
  for (const t of layout.tiles)
    if (t.kind === 'tile') context.strokeRect(t.rect.x * width, t.rect.y * height, t.rect.width * width, t.rect.height * height);
}

/** The caption band from `top` down: the title line, then the legend (a clear and a dimmed swatch over the same grey). */
function drawCaption(context: CanvasRenderingContext2D, top: number, width: number, title: string) {
  context.fillStyle = '#ffffff';
  context.fillRect(0, top, width, CAPTION_HEIGHT);
  context.font = '14px sans-serif';
  context.textBaseline = 'middle';
  context.fillStyle = '#18181b';
  context.fillText(title, 10, top + 16, width - 20);
  const swatch = (x: number, dimmed: boolean, label: string) => {
    context.fillStyle = '#a1a1aa';
    context.fillRect(x, top + 32, 18, 14);
    if (dimmed) {
      context.fillStyle = PRUNED;
      context.fillRect(x, top + 32, 18, 14);
    }
    context.fillStyle = '#3f3f46';
    context.fillText(label, x + 24, top + 39);
    return x + 24 + context.measureText(label).width + 16;
  };
  swatch(swatch(10, false, 'kept: still read at this layer'), true, 'pruned before this layer');
}

async function encodePng(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('The overlay could not be encoded as PNG.');
  return new Uint8Array(await blob.arrayBuffer());
}

function drawFramed(context: CanvasRenderingContext2D, image: HTMLImageElement, policy: TraceView['resizePolicy'], size: number) {
  const { naturalWidth: w, naturalHeight: h } = image;
  if (policy === 'stretch') return context.drawImage(image, 0, 0, size, size);
  // pad: the whole image fits inside the square; crop: the square is filled and the overflow cut.
  const scale = policy === 'pad' ? size / Math.max(w, h) : size / Math.min(w, h);
  context.drawImage(image, (size - w * scale) / 2, (size - h * scale) / 2, w * scale, h * scale);
}

function loadImage(url: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error('The image could not be loaded for the overlay.'));
    image.src = url;
  });
}
