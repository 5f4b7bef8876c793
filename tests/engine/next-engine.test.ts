// A LLaVA-NeXT checkpoint through the Engine, as the CLI and the app use it: imported on first use,
// answered with and without TransPrune-High, traces of the new version with the tile layout, FLOPs
// from this image's own token count, and compare on the tiled token set.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKept, emptyPositions } from '../../src/engine/eval/positions.js';
import { Engine } from '../../src/engine/runtime/engine.js';
import { readTrace, traceToJson, traceToTokenCsv } from '../../src/shared/trace-files.js';
import { parseMethod } from '../../src/shared/pruning.js';
import { stageCounts, TRACE_VERSION } from '../../src/shared/trace.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';

const TILE = 28;
const GRID = 4;
const root = mkdtempSync(join(tmpdir(), 'tps-next-engine-'));
let engine: Engine;
let checkpoint: string;
let image: Uint8Array;

beforeAll(async () => {
  checkpoint = join(root, 'hf-next');
  await makeSyntheticCheckpoint(checkpoint, {
    preset: 'tiny',
    layers: 8,
    imageSize: TILE,
    patchSize: 7,
    gridPinpoints: [
      [TILE, 2 * TILE],
      [2 * TILE, TILE],
      [2 * TILE, 2 * TILE],
    ],
  });
  engine = new Engine({ modelStore: join(root, 'store'), ep: 'cpu' });
  // 90 x 70: best resolution 56 x 56 (2 x 2 tiles), resized to 56 x 44, so unpadding drops one canvas row top and bottom.
  image = new Uint8Array(
    await sharp({ create: { width: 90, height: 70, channels: 3, background: '#3a6' } })
      .png()
      .toBuffer(),
  );
});
afterAll(async () => {
  await engine?.unload();
  rmSync(root, { recursive: true, force: true });
});

/**
 * The processor's count (transformers' LlavaNextProcessor._get_number_of_features), written out for this
 * image: canvas 8 x 8 cells; the image is wider than the canvas (90/70 > 1), so rows are cut:
 * new height = int(70 * 8 / 90) = 6, padding (8 - 6) // 2 = 1 each side, 6 rows of 8 cells + a newline each.
 */
const EXPECTED_N = GRID * GRID + 6 * (8 + 1);

describe('LLaVA-NeXT through the Engine', () => {
  it('imports the folder on first use and answers; FLOPs follow this image: N tokens, 5 views through the tower', async () => {
    const result = await engine.ask({
      model: checkpoint,
      image,
      question: 'What color is the square?',
      method: parseMethod('none'),
      maxTokens: 3,
    });
    expect(result.stats.visualTokensTotal).toBe(EXPECTED_N);
    expect(result.stats.visualTokensKept).toBe(EXPECTED_N);
    expect(result.answer.length).toBeGreaterThan(0);
    const trace = result.trace!;
    expect(trace.version).toBe(TRACE_VERSION);
    expect(trace.prompt.visualTokens).toBe(EXPECTED_N);
    // Paper convention from the real per-layer count (Eq. 7, visual tokens only): 4nd^2 + 2n^2 d + 3ndm per layer.
    const [d, m, layers] = [64, 128, 8];
    const perLayer = (n: number) => 4 * n * d * d + 2 * n * n * d + 3 * n * d * m;
    expect(trace.totals.flops.paper).toBe(layers * perLayer(EXPECTED_N));
    expect(trace.totals.flops.paperUnpruned).toBe(trace.totals.flops.paper);
    expect(trace.layers.map((l) => l.flops?.paper)).toEqual(Array(layers).fill(perLayer(EXPECTED_N)));
    expect(result.stats.tflops).toBeCloseTo(trace.totals.flops.paper / 1e12, 12);
  });

  it('records the layout: base view, 2 x 2 tiles with their rectangles in the original image, a newline per row', async () => {
    const { trace } = await engine.ask({
      model: checkpoint,
      image,
      question: 'What color is the square?',
      method: parseMethod('none'),
      maxTokens: 1,
    });
    const { tiles, tokens } = trace.image!.layout;
    expect(tiles.map((t) => [t.kind, t.row, t.col])).toEqual([
      ['base', 0, 0],
      ['tile', 0, 0],
      ['tile', 0, 1],
      ['tile', 1, 0],
      ['tile', 1, 1],
    ]);
    expect(tiles[0].rect).toEqual({ x: 0, y: 0, width: 90, height: 70 });
    // The image is resized to 56 x 44 and pasted 6 px down in the 56 x 56 canvas: scale 90/56 across, 70/44 down.
    const [sx, sy] = [90 / 56, 70 / 44];
    expect(tiles[1].rect.x).toBeCloseTo(0, 12);
    expect(tiles[1].rect.y).toBeCloseTo(-6 * sy, 12);
    expect(tiles[4].rect.x).toBeCloseTo(28 * sx, 12);
    expect(tiles[4].rect.width).toBeCloseTo(28 * sx, 12);
    expect(tiles[4].rect.height).toBeCloseTo(28 * sy, 12);
    expect(tokens.kind.slice(0, 16).every((k) => k === 'base')).toBe(true);
    const newlines = tokens.kind.flatMap((k, i) => (k === 'newline' ? [i] : []));
    expect(newlines).toEqual([0, 1, 2, 3, 4, 5].map((r) => 16 + 8 * (r + 1) + r));
    // First unpadded canvas row is canvas row 1: tile row 0, cell row 1, columns 0..3 of tile 1 then of tile 2.
    expect(tokens.tile.slice(16, 24)).toEqual([1, 1, 1, 1, 2, 2, 2, 2]);
    expect(tokens.row.slice(16, 24)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(tokens.col.slice(16, 25)).toEqual([0, 1, 2, 3, 0, 1, 2, 3, GRID]);
    // The last canvas row kept is row 6: tile row 1, cell row 2.
    expect([tokens.tile.at(-2), tokens.row.at(-2), tokens.col.at(-2)]).toEqual([4, 2, 3]);
    expect(readTrace(traceToJson(trace))).toEqual(trace);
    expect(traceToTokenCsv(trace)).toBe(
      'layer,position,grid_index,grid_row,grid_col,attn_ratio,attn_cos,mlp_ratio,mlp_cos,ttv_layer,ttv_acc,attention,score,kept,kind,tile\n',
    );
  });

  it('TransPrune-High prunes the tiled set (newlines included) to floor(N r); compare shares the layers before the first prune', async () => {
    const methods = [parseMethod('none'), parseMethod('transprune-high')];
    const { results, sharedLayers } = await engine.compare({
      model: checkpoint,
      image,
      question: 'What color is the square?',
      methods,
      maxTokens: 2,
    });
    const pruned = results[1].trace;
    expect(stageCounts(pruned)).toEqual([EXPECTED_N, ...[0.875, 0.625, 0.125].map((r) => Math.floor(EXPECTED_N * r))]);
    expect(sharedLayers).toBe(pruned.layers.find((l) => l.kept)!.layer);
    expect(results[1].stats.tflops).toBeLessThan(results[0].stats.tflops);
    expect(results[0].stats.tflopsUnpruned).toBeCloseTo(results[1].stats.tflopsUnpruned, 12);
    // Newline tokens are visual tokens like the others: scored at every stage, kept or pruned on their score.
    const first = pruned.layers.find((l) => l.kept)!;
    const kinds = pruned.image!.layout.tokens.kind;
    expect(first.tokens!.filter((t) => kinds[t] === 'newline')).toHaveLength(6);
    expect(first.scores!.score!.length).toBe(EXPECTED_N);
    // eval --positions counts the kept tokens where they lie in the image, on the base view's grid.
    const positions = emptyPositions({ rows: GRID, cols: GRID });
    addKept(positions, pruned);
    const finalKept = pruned.layers.findLast((l) => l.kept)!.kept!;
    expect(positions.counts).toHaveLength(GRID * GRID);
    expect(positions.counts.reduce((a, b) => a + b, 0)).toBe(finalKept.filter((t) => kinds[t] !== 'newline').length);
    const rows = traceToTokenCsv(pruned)
      .trim()
      .split('\n')
      .slice(1)
      .map((r) => r.split(','));
    expect(rows.filter((r) => r[0] === String(first.layer) && r[14] === 'newline')).toHaveLength(6);
  });
});
