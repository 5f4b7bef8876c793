import { PAD_COLOUR, type TiledLayout, type TraceView } from './traceView.js';

/**
 * Draws the overlay the inspector shows (image framed as the model saw it, pruned patches dimmed,
 * grid lines) onto a canvas and returns it as PNG bytes, for "Export overlay".
 */
export async function renderOverlayPng(view: TraceView, present: boolean[], imageUrl: string | undefined, size = 672): Promise<Uint8Array> {
  if (view.layout) return renderTiledOverlayPng(view.layout, present, imageUrl, size);
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext('2d');
  if (!context) throw new Error('This browser cannot draw to a canvas.');
  context.fillStyle = imageUrl && view.resizePolicy === 'pad' ? PAD_COLOUR : '#808080';
  context.fillRect(0, 0, size, size);
  if (imageUrl) drawFramed(context, await loadImage(imageUrl), view.resizePolicy, size);

  const { rows, cols } = view.grid;
  const cellW = size / cols;
  const cellH = size / rows;
  context.fillStyle = 'rgba(10, 10, 10, 0.7)';
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

  return encodePng(canvas);
}

/** LLaVA-NeXT: the original image (longest side `size`), pruned tile patches dimmed, tile boundaries outlined. */
async function renderTiledOverlayPng(
  layout: TiledLayout,
  present: boolean[],
  imageUrl: string | undefined,
  size: number,
): Promise<Uint8Array> {
  const scale = size / Math.max(layout.imageWidth, layout.imageHeight);
  const [width, height] = [Math.round(layout.imageWidth * scale), Math.round(layout.imageHeight * scale)];
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  if (!context) throw new Error('This browser cannot draw to a canvas.');
  context.fillStyle = '#808080';
  context.fillRect(0, 0, width, height);
  if (imageUrl) context.drawImage(await loadImage(imageUrl), 0, 0, width, height);
  context.fillStyle = 'rgba(10, 10, 10, 0.7)';
  layout.tokens.forEach((t, patch) => {
    if (t.kind === 'tile' && !present[patch])
      context.fillRect(t.rect.x * width, t.rect.y * height, t.rect.width * width, t.rect.height * height);
  });
  context.strokeStyle = 'rgba(252, 211, 77, 0.9)';
  context.lineWidth = 2;
  for (const t of layout.tiles)
    if (t.kind === 'tile') context.strokeRect(t.rect.x * width, t.rect.y * height, t.rect.width * width, t.rect.height * height);
  return encodePng(canvas);
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
