import { z } from 'zod';
import { MethodSpec, Schedule } from './pruning.js';

/**
 * The pruning trace: everything the inspector shows and the exports carry, for one answer.
 * Versioned; `readTrace` (src/engine/trace) validates on load. Documented in docs/trace-format.md.
 *
 * Conventions: decoder layers are 1-BASED (as the paper and the method specs). Per-token arrays at a
 * layer are in the order of that layer's visual block, whose original grid indices are `tokens`.
 * Times are milliseconds; FLOPs are raw counts (see the `flops` block for the two conventions).
 */

export const TRACE_VERSION = 2;

const count = z.number().int().min(0);
const ms = z.number().min(0);
const numbers = z.array(z.number());
const indices = z.array(count);

/** Per-token TTV components of one accumulation layer, for the visual tokens. */
export const TtvRecord = z.object({
  attnRatio: numbers,
  attnCos: numbers,
  mlpRatio: numbers,
  mlpCos: numbers,
  /** TTV_l = TTV(attn) + TTV(mlp), each with the softmax over the whole sequence. */
  layer: numbers,
});
export type TtvRecord = z.infer<typeof TtvRecord>;

/** Scores at a pruning layer, for the visual tokens entering the prune. */
export const ScoreRecord = z.object({
  /** Accumulated TTV, L1-normalized over the visual block (TransPrune). */
  ttv: numbers.optional(),
  /** Attention the probe's queries pay to each visual token; L1-normalized for TransPrune, raw for FastV/PDrop. */
  attention: numbers.optional(),
  /** The score the top-k ran on (absent for random). */
  score: numbers.optional(),
});
export type ScoreRecord = z.infer<typeof ScoreRecord>;

/** What one decoder layer cost, in both conventions (see `FlopsRecord`). */
export const LayerFlops = z.object({
  /** Eq. 7 for this layer: multiply-accumulates over its visual tokens, no overheads. */
  paper: z.number().min(0),
  /** FLOPs of this layer over all its tokens, plus the scoring run on its output (TTV side outputs, probes). */
  full: z.number().min(0),
});
export type LayerFlops = z.infer<typeof LayerFlops>;

export const LayerRecord = z.object({
  layer: z.number().int().min(1),
  /** Visual tokens in the sequence while this layer ran. */
  visualIn: count,
  seqLen: count,
  timeMs: ms,
  /** Recorded by the engine; absent in traces written before layers carried their FLOPs (see `layerPaperFlops`). */
  flops: LayerFlops.optional(),
  /** Original grid indices of the visual tokens entering the layer; present where per-token arrays are. */
  tokens: indices.optional(),
  ttv: TtvRecord.optional(),
  scores: ScoreRecord.optional(),
  /** Original grid indices kept after this layer (a pruning stage), ascending. */
  kept: indices.optional(),
});
export type LayerRecord = z.infer<typeof LayerRecord>;

/** One view the vision tower encoded: LLaVA-1.5's image, or LLaVA-NeXT's base view (the whole image) and its tiles. */
export const VisualTile = z.object({
  kind: z.enum(['base', 'tile']),
  /** Place in the tile grid, row-major (the base view: 0, 0). */
  row: count,
  col: count,
  /** Its patch grid: rows * cols feature cells. */
  grid: z.object({ rows: count, cols: count }),
  /**
   * The part of the original image (pixels, EXIF orientation applied) the view's square covers; it reaches past
   * the image where the view is padding, and each of the grid's cells is an equal share of it.
   */
  rect: z.object({ x: z.number(), y: z.number(), width: z.number().positive(), height: z.number().positive() }),
});
export type VisualTile = z.infer<typeof VisualTile>;

/**
 * Where every visual token comes from, in sequence order (index = original visual index). `kind`: a patch of
 * the base view or of a tile, an `image_newline` after a row of tile patches, or CLIP's class token ('full'
 * strategy). `tile` indexes `tiles`; `row`, `col` is the cell in that view's grid (a newline: the row it
 * ends, col = the view's column count; the class token: 0, 0 of the base view).
 */
export const VisualLayout = z.object({
  tiles: z.array(VisualTile).min(1),
  tokens: z.object({
    kind: z.array(z.enum(['base', 'tile', 'newline', 'cls'])),
    tile: indices,
    row: indices,
    col: indices,
  }),
});
export type VisualLayout = z.infer<typeof VisualLayout>;
export type VisualTokenKind = VisualLayout['tokens']['kind'][number];

export const FlopsRecord = z.object({
  /** TransPrune Eq. 7 as the paper evaluates it: MACs, visual tokens only, no overheads. The sum of the layers' `paper`. */
  paper: z.number().min(0),
  /** FLOPs (2 per MAC) of the whole prefill: the layers' `full`, plus the vision tower, projector, projector-side selection and head. */
  full: z.number().min(0),
  /** The same two counts for an unpruned prefill of the same prompt, for ratios. */
  paperUnpruned: z.number().min(0),
  fullUnpruned: z.number().min(0),
});

export const Trace = z
  .object({
    version: z.literal(TRACE_VERSION),
    createdAt: z.string(),
    model: z.object({ id: z.string(), weightsHash: z.string(), numLayers: z.number().int().min(1), hidden: z.number().int().min(1) }),
    provider: z.string(),
    image: z
      .object({
        hash: z.string(),
        width: count,
        height: count,
        /** One view's input size (each LLaVA-NeXT tile is this size too). */
        modelWidth: count,
        modelHeight: count,
        /** The (base) view's patch grid. */
        grid: z.object({ rows: count, cols: count }),
        layout: VisualLayout,
      })
      .nullable(),
    prompt: z.object({
      /** Non-visual prompt tokens (system, question, role markers). */
      textTokens: count,
      /** Visual tokens out of the vision tower (N). */
      visualTokens: count,
      /** Tokens after the visual block: TransPrune's IGA queries. */
      instructionTokens: count,
      visualStart: count,
    }),
    method: z.object({
      label: z.string(),
      spec: MethodSpec,
      /** The schedule actually applied after depth scaling and overrides, where the method has one. */
      schedule: Schedule.optional(),
    }),
    /** Projector-side selection (DivPrune): original grid indices passed to the LLM. */
    projectorKept: indices.optional(),
    layers: z.array(LayerRecord),
    totals: z.object({
      flops: FlopsRecord,
      timesMs: z.object({ preprocess: ms, vision: ms, prefill: ms, decode: ms, scoring: ms }),
      generatedTokens: count,
      answer: z.string(),
    }),
  })
  .superRefine((t, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
    t.layers.forEach((l, i) => {
      if (l.layer !== i + 1) issue(`layers[${i}].layer is ${l.layer}, expected ${i + 1}`);
      const n = l.visualIn;
      for (const [name, arr] of perTokenArrays(l))
        if (arr.length !== n) issue(`layer ${l.layer}: ${name} has ${arr.length} entries for ${n} visual tokens`);
      if (l.kept && !isAscending(l.kept)) issue(`layer ${l.layer}: kept indices must be strictly increasing`);
    });
    if (t.layers.length !== t.model.numLayers) issue(`${t.layers.length} layer records for a ${t.model.numLayers}-layer model`);
    if (t.image) {
      const { tiles, tokens } = t.image.layout;
      for (const [name, arr] of Object.entries(tokens))
        if (arr.length !== t.prompt.visualTokens)
          issue(`image.layout.tokens.${name} has ${arr.length} entries for ${t.prompt.visualTokens} visual tokens`);
      if (tokens.tile.some((i) => i >= tiles.length)) issue('image.layout.tokens.tile: index out of range');
    }
    const perLayer = t.layers.filter((l) => l.flops).map((l) => l.flops!);
    if (perLayer.length && perLayer.length !== t.layers.length) issue('FLOPs on some layer records only');
    if (perLayer.length === t.layers.length && perLayer.length) {
      const sum = (key: keyof LayerFlops) => perLayer.reduce((total, f) => total + f[key], 0);
      const { paper, full } = t.totals.flops;
      if (Math.abs(paper - sum('paper')) > 1e-9 * paper) issue(`totals.flops.paper is ${paper}, the layers' sum ${sum('paper')}`);
      if (full < sum('full') * (1 - 1e-9)) issue(`totals.flops.full is ${full}, less than the layers' sum ${sum('full')}`);
    }
    // Nesting (method spec §8.4): every stage keeps a subset of the previous one.
    let previous: Set<number> | null = t.projectorKept ? new Set(t.projectorKept) : null;
    for (const l of t.layers) {
      if (!l.kept) continue;
      if (previous && l.kept.some((k) => !previous!.has(k))) issue(`layer ${l.layer}: kept indices are not a subset of the previous stage`);
      if (l.kept.some((k) => k >= t.prompt.visualTokens)) issue(`layer ${l.layer}: kept index out of range`);
      previous = new Set(l.kept);
    }
  });
export type Trace = z.infer<typeof Trace>;

function perTokenArrays(l: LayerRecord): [string, number[]][] {
  const out: [string, number[]][] = [];
  if (l.tokens) out.push(['tokens', l.tokens]);
  if (l.ttv) for (const [k, v] of Object.entries(l.ttv)) out.push([`ttv.${k}`, v]);
  if (l.scores) for (const [k, v] of Object.entries(l.scores)) if (v) out.push([`scores.${k}`, v]);
  return out;
}

function isAscending(xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > xs[i - 1]);
}

/** The original grid indices of the visual tokens entering `layer` (1-based), derived from the stages. */
export function visualTokensAt(trace: Trace, layer: number): number[] {
  let current = trace.projectorKept ?? Array.from({ length: trace.prompt.visualTokens }, (_, i) => i);
  for (const l of trace.layers) {
    if (l.layer >= layer) break;
    if (l.kept) current = l.kept;
  }
  return current;
}

/** Visual tokens from the vision tower, after the projector-side selection (if any), then after each pruning stage. */
export function stageCounts(trace: Trace): number[] {
  const counts = [trace.prompt.visualTokens];
  if (trace.projectorKept) counts.push(trace.projectorKept.length);
  for (const l of trace.layers) if (l.kept) counts.push(l.kept.length);
  return counts;
}

/**
 * How a one-view image was made square, read from its view's place: padded (the view reaches past the
 * image's edges) or centre-cropped (it lies inside them).
 */
export function viewFraming(image: NonNullable<Trace['image']>): 'pad' | 'crop' {
  const { rect } = image.layout.tiles[0];
  return rect.x < 0 || rect.y < 0 || rect.width > image.width || rect.height > image.height ? 'pad' : 'crop';
}

/** The layout of one view covering `rect` of the image with a rows x cols patch grid, the class token first when `withCls`. */
export function singleViewLayout(rect: VisualTile['rect'], grid: { rows: number; cols: number }, withCls = false): VisualLayout {
  const cells = grid.rows * grid.cols;
  const n = cells + (withCls ? 1 : 0);
  const tokens: VisualLayout['tokens'] = withCls
    ? { kind: ['cls'], tile: new Array(n).fill(0), row: [0], col: [0] }
    : { kind: [], tile: new Array(n).fill(0), row: [], col: [] };
  for (let cell = 0; cell < cells; cell++) {
    tokens.kind.push('base');
    tokens.row.push(Math.floor(cell / grid.cols));
    tokens.col.push(cell % grid.cols);
  }
  return { tiles: [{ kind: 'base', row: 0, col: 0, grid, rect }], tokens };
}

/** The part of the original image (pixels) a visual token covers, or null for a newline or the class token. */
export function tokenRect(image: NonNullable<Trace['image']>, index: number): VisualTile['rect'] | null {
  const { tiles, tokens } = image.layout;
  if (tokens.kind[index] === 'newline' || tokens.kind[index] === 'cls') return null;
  const { rect, grid } = tiles[tokens.tile[index]];
  const width = rect.width / grid.cols;
  const height = rect.height / grid.rows;
  return { x: rect.x + tokens.col[index] * width, y: rect.y + tokens.row[index] * height, width, height };
}

/**
 * The cell of the base view's grid (row-major) a visual token's centre falls in, or null for a newline or the
 * class token: where in the image a token sits, whichever view it came from.
 */
export function baseCell(image: NonNullable<Trace['image']>, index: number): number | null {
  const rect = tokenRect(image, index);
  if (!rect) return null;
  const base = image.layout.tiles[0];
  const band = (centre: number, start: number, extent: number, count: number) =>
    Math.min(count - 1, Math.max(0, Math.floor(((centre - start) / extent) * count)));
  const row = band(rect.y + rect.height / 2, base.rect.y, base.rect.height, base.grid.rows);
  const col = band(rect.x + rect.width / 2, base.rect.x, base.rect.width, base.grid.cols);
  return row * base.grid.cols + col;
}

/**
 * A parsed trace file of any version brought to the current one (unknown versions pass through for the
 * schema to reject). Version 1 had no layout: its single view was LLaVA-1.5's shortest-edge resize and
 * center crop to modelWidth x modelHeight, and its visual tokens were that grid (after the class token
 * when there was one more).
 */
export function migrateTrace(data: unknown): unknown {
  type V1Image = { width: number; height: number; modelWidth: number; modelHeight: number; grid: { rows: number; cols: number } };
  const v1 = data as { version?: unknown; image?: V1Image | null; prompt?: { visualTokens?: number } } | null;
  if (v1?.version !== 1) return data;
  const image = v1.image;
  if (!image) return { ...v1, version: 2 };
  const { width, height, modelWidth, modelHeight, grid } = image;
  const scale = Math.min(width / modelWidth, height / modelHeight);
  const side = { width: modelWidth * scale, height: modelHeight * scale };
  const rect = { x: (width - side.width) / 2, y: (height - side.height) / 2, ...side };
  const withCls = v1.prompt?.visualTokens === grid.rows * grid.cols + 1;
  return { ...v1, version: 2, image: { ...image, layout: singleViewLayout(rect, grid, withCls) } };
}

/**
 * Each decoder layer's FLOPs in the paper's convention (Eq. 7), as the engine recorded them. Traces written
 * before layers carried their FLOPs get them from the counts: Eq. 7 is a·n + 2d·n² per layer, and the
 * recorded unpruned total (every layer with all N visual tokens) fixes a = 4d² + 3dm.
 */
export function layerPaperFlops(trace: Trace): number[] {
  if (trace.layers.every((l) => l.flops)) return trace.layers.map((l) => l.flops!.paper);
  const n = trace.prompt.visualTokens;
  if (n === 0) return trace.layers.map(() => 0);
  const b = 2 * trace.model.hidden;
  const a = trace.totals.flops.paperUnpruned / (trace.model.numLayers * n) - b * n;
  return trace.layers.map((l) => a * l.visualIn + b * l.visualIn ** 2);
}
