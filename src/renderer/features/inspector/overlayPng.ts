import { PAD_COLOUR, type TraceView } from './traceView.js';

/**
 * Draws the overlay the inspector shows (image framed as the model saw it, pruned patches dimmed,
 * grid lines) onto a canvas and returns it as PNG bytes, for "Export overlay".
 */
export async function renderOverlayPng(view: TraceView, present: boolean[], imageUrl: string | undefined, size = 672): Promise<Uint8Array> {
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
