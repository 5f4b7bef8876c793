import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnswerStats } from '../../../src/shared/conversation.js';
import { statItems } from '../../../src/renderer/features/chat/StatsRow.js';
import { histogramOption, layerChartOption } from '../../../src/renderer/features/inspector/charts.js';
import { Inspector, PRUNED_FILL } from '../../../src/renderer/features/inspector/Inspector.js';
import { traceToView } from '../../../src/renderer/features/inspector/traceAdapter.js';
import { describeToken, droppedAfter, positionHistogram, presentAt } from '../../../src/renderer/features/inspector/traceView.js';
import { Trace, visualTokensAt } from '../../../src/shared/trace.js';
import { makeTrace, NEXT_LAYOUT, paperLayerMacs } from './traceFixture.js';

const buildTrace = () => traceToView(makeTrace());
const chatStats: AnswerStats = {
  timeToFirstTokenMs: 100,
  prefillMs: 50,
  decodeTokensPerSec: 20,
  generatedTokens: 5,
  visualTokensKept: 6,
  visualTokensTotal: 16,
  tflops: 0,
  tflopsUnpruned: 0,
  executionProvider: 'cpu',
};

afterEach(cleanup);

describe('traceToView', () => {
  it('the fixture follows the trace schema', () => {
    expect(() => Trace.parse(makeTrace())).not.toThrow();
  });

  it('maps block-ordered scores onto grid patches and layers to 0-based', () => {
    const trace = makeTrace();
    const view = traceToView(trace);
    const pruning = trace.layers.filter((l) => l.kept);
    expect(view.steps.map((s) => s.layer)).toEqual(pruning.map((l) => l.layer - 1));
    pruning.forEach((l, k) => {
      l.tokens!.forEach((patch, i) => {
        expect(view.steps[k].scores.combined![patch]).toBe(l.scores!.score![i]);
        expect(view.steps[k].scores.iga![patch]).toBe(l.scores!.attention![i]);
      });
      expect(view.steps[k].scores.ttv!.filter((v) => v !== null)).toHaveLength(l.visualIn);
    });
  });

  it('splits the paper FLOPs over the layers by Eq. 7', () => {
    const trace = makeTrace({ hidden: 96, intermediate: 250 });
    const view = traceToView(trace);
    trace.layers.forEach((l, i) => expect(view.layerTflops[i] * 1e12).toBeCloseTo(paperLayerMacs(l.visualIn, 96, 250), 3));
    const total = view.layerTflops.reduce((a, b) => a + b) * 1e12;
    expect(total / trace.totals.flops.paper).toBeCloseTo(1, 10);
  });
});

describe('layer chart', () => {
  it('draws compute in the unit the largest layer reads best in', () => {
    const view = { ...buildTrace(), layerTflops: [0.04, 0.02], layerTflopsUnpruned: [0.04, 0.04], visualCounts: [576, 288] };
    const option = layerChartOption(view, 0) as { yAxis: { name: string }[]; series: { name: string; data: unknown[] }[] };
    expect(option.yAxis[1].name).toBe('GFLOPs');
    expect(option.series.slice(1).map((s) => [s.name, s.data])).toEqual([
      ['GFLOPs', [40, 20]],
      ['GFLOPs unpruned', [40, 40]],
    ]);
    const large = layerChartOption({ ...view, layerTflops: [2, 1], layerTflopsUnpruned: [2, 2] }, 0) as typeof option;
    expect(large.yAxis[1].name).toBe('TFLOPs');
  });
});

describe('trace view helpers', () => {
  it('knows where each patch was dropped and what is present at every layer', () => {
    const view = buildTrace();
    const dropped = droppedAfter(view);
    for (let layer = 0; layer < view.numLayers; layer++) {
      expect(presentAt(dropped, layer).filter(Boolean).length).toBe(view.visualCounts[layer]);
    }
    const [first, second] = view.steps;
    for (let p = 0; p < 16; p++) {
      const expected = !first.kept.includes(p) ? first.layer : !second.kept.includes(p) ? second.layer : null;
      expect(dropped[p]).toBe(expected);
    }
  });

  it('counts kept patches per row and column', () => {
    const view = buildTrace();
    const present = presentAt(droppedAfter(view), 7);
    const { rows, cols } = positionHistogram(view, present);
    const kept = view.steps[1].kept;
    expect(rows).toEqual([0, 1, 2, 3].map((r) => kept.filter((p) => Math.floor(p / 4) === r).length));
    expect(cols).toEqual([0, 1, 2, 3].map((c) => kept.filter((p) => p % 4 === c).length));
    expect(rows.reduce((a, b) => a + b)).toBe(6);
  });
});

describe('Inspector', () => {
  it('shows, at every slider position, the kept count the trace records', () => {
    const trace = makeTrace({
      rows: 6,
      cols: 6,
      numLayers: 12,
      stages: [
        { afterLayer: 2, keep: 30 },
        { afterLayer: 4, keep: 20 },
        { afterLayer: 9, keep: 4 },
      ],
    });
    const { container } = render(<Inspector view={traceToView(trace)} />);
    const slider = screen.getByRole('slider');
    for (const record of trace.layers) {
      fireEvent.change(slider, { target: { value: String(record.layer - 1) } });
      expect(screen.getByTestId('inspector-layer').textContent).toBe(String(record.layer));
      expect(screen.getByTestId('inspector-kept').textContent).toBe(String(record.visualIn));
      const shown = [...container.querySelectorAll('[data-kept="true"]')].map((el) => Number(el.getAttribute('data-patch')));
      expect(shown).toEqual(visualTokensAt(trace, record.layer));
    }
  });

  it('heads the view with the compute figure the chat stats show for the same answer', () => {
    const trace = makeTrace();
    render(<Inspector view={traceToView(trace)} />);
    // Eq. 7 of the fixture (16 visual tokens over layers 1-3, 12 over 4-5, 6 over 6-8, d 64, m 172) and of 8 x 16.
    expect(screen.getByTestId('inspector-compute').textContent).toBe('4.6 MFLOPs (69.8%)');
    const { flops } = trace.totals;
    const stats = { ...chatStats, tflops: flops.paper / 1e12, tflopsUnpruned: flops.paperUnpruned / 1e12 };
    expect(statItems(stats).find((item) => item.label === 'compute')!.value).toBe('4.6 MFLOPs (69.8%)');
  });

  it('hovering a patch shows where it was dropped and its scores', () => {
    const view = buildTrace();
    const { container } = render(<Inspector view={view} />);
    const droppedEarly = [...Array(16).keys()].find((p) => !view.steps[0].kept.includes(p))!;
    fireEvent.mouseEnter(container.querySelector(`[data-patch="${droppedEarly}"]`)!);
    const card = screen.getByTestId('patch-card');
    expect(card.textContent).toContain('dropped after layer 3');
    expect(card.textContent).toContain(`combined ${view.steps[0].scores.combined![droppedEarly]!.toFixed(4)}`);
    expect(within(card).getAllByRole('listitem')).toHaveLength(1);

    const survivor = view.steps[1].kept[0];
    fireEvent.mouseEnter(container.querySelector(`[data-patch="${survivor}"]`)!);
    expect(screen.getByTestId('patch-card').textContent).toContain('kept to the last layer');
    expect(within(screen.getByTestId('patch-card')).getAllByRole('listitem')).toHaveLength(2);
  });

  it('moves the highlighted patch with the arrow keys', () => {
    const view = buildTrace();
    render(<Inspector view={view} />);
    const grid = screen.getByRole('group', { name: /Patch grid/ });
    fireEvent.focus(grid);
    fireEvent.keyDown(grid, { key: 'ArrowDown' });
    fireEvent.keyDown(grid, { key: 'ArrowRight' });
    expect(screen.getByTestId('patch-card').textContent).toContain('Patch 5 (row 2, column 2)');
  });

  it('draws one heatmap per score kind at each pruning layer, and the charts', () => {
    const view = buildTrace();
    render(<Inspector view={view} />);
    expect(screen.getAllByRole('img', { name: /heatmap/ })).toHaveLength(6);
    expect(screen.getByRole('region', { name: 'Scores at pruning layer 3' })).toBeTruthy();
    expect(screen.getByRole('img', { name: /Visual tokens and kFLOPs per layer/ }).querySelector('svg')).not.toBeNull();
  });

  it('exports through the callbacks and reports failures inline', async () => {
    const calls: string[] = [];
    render(
      <Inspector
        view={buildTrace()}
        onExportTrace={async (format) => {
          calls.push(format);
          if (format === 'csv') throw new Error('disk full');
          return 'Saved to /home/me/trace.json';
        }}
      />,
    );
    fireEvent.click(screen.getByRole('button', { name: 'Export trace JSON' }));
    // Where it went, never a bare "exported".
    expect((await screen.findByText('Saved to /home/me/trace.json')).getAttribute('role')).toBe('status');
    fireEvent.click(screen.getByRole('button', { name: 'Export trace CSV' }));
    expect((await screen.findByRole('alert')).textContent).toContain('disk full');
    expect(calls).toEqual(['json', 'csv']);
    expect((screen.getByRole('button', { name: 'Export overlay PNG' }) as HTMLButtonElement).disabled).toBe(true);
  });
});

/** The fixture as FastV records it: one attention probe after layer K, the attention doubling as the score, no TTV. */
function fastvTrace(): Trace {
  const trace = makeTrace({ stages: [{ afterLayer: 2, keep: 8 }] });
  trace.method = { label: 'fastv', spec: { llm: { kind: 'fastv', k: 2, r: 0.5, positions: 'original' } } };
  for (const layer of trace.layers) {
    if (layer.scores) layer.scores = { attention: layer.scores.attention, score: layer.scores.attention };
  }
  return Trace.parse(trace);
}

describe('Inspector explains what it shows', () => {
  it("explains the method that ran: FastV by its last-token attention, never TransPrune's TTV and IGA", () => {
    render(<Inspector view={traceToView(fastvTrace())} />);
    const explained = screen.getByRole('region', { name: 'What you are looking at' }).textContent!;
    expect(explained).toMatch(/FastV/);
    expect(explained).toMatch(/attention the last token of the prompt pays/);
    expect(explained).not.toMatch(/TTV|IGA/);
    const heatmaps = screen.getAllByRole('img', { name: /heatmap/ }).map((h) => h.getAttribute('aria-label'));
    expect(heatmaps).toHaveLength(1);
    expect(heatmaps[0]).toMatch(/^Last-token attention heatmap/);
  });

  it('explains TransPrune by TTV and IGA and names its three heatmaps so', () => {
    render(<Inspector view={buildTrace()} />);
    const explained = screen.getByRole('region', { name: 'What you are looking at' }).textContent!;
    expect(explained).toMatch(/TTV.*token transition variation/);
    expect(explained).toMatch(/IGA.*instruction-guided attention/);
    const titles = screen.getAllByRole('img', { name: /heatmap/ }).map((h) => h.getAttribute('aria-label')!.split(' heatmap')[0]);
    expect(new Set(titles)).toEqual(new Set(['Accumulated TTV', 'IGA', 'Combined score']));
  });

  it('titles the charts, names the histogram axes, and labels the layer slider', () => {
    render(<Inspector view={buildTrace()} />);
    for (const title of ['Visual tokens and compute per layer', 'Kept patches by row and by column at layer 8'])
      expect(
        within(screen.getByRole('figure', { name: title }))
          .getByRole('img')
          .querySelector('svg'),
      ).not.toBeNull();
    const option = histogramOption({ rows: [1, 2], cols: [2, 1] }) as { xAxis: { name: string }; yAxis: { name: string } };
    expect(option.xAxis.name).toMatch(/row.*column/);
    expect(option.yAxis.name).toBe('kept patches');
    const slider = screen.getByRole('slider', { name: 'Layer' });
    fireEvent.change(slider, { target: { value: '2' } });
    expect(screen.getByRole('slider', { name: 'Layer' }).getAttribute('aria-valuetext')).toBe('Layer 3: 16 of 16 tokens kept');
  });

  it("draws each legend swatch as a patch of picture, the pruned one under the overlay's own shade", () => {
    render(<Inspector view={buildTrace()} />);
    const swatches = [...screen.getByRole('list', { name: 'Patch legend' }).querySelectorAll<HTMLElement>('[data-swatch]')];
    expect(swatches.map((s) => s.dataset.swatch)).toEqual(['kept', 'pruned', 'pointer']);
    // The same picture under every swatch (no empty bordered box that reads as a checkbox).
    for (const swatch of swatches) expect(swatch.className).toMatch(/bg-gradient/);
    expect(swatches[0].className).not.toMatch(/\bborder\b/);
    expect((swatches[1].firstElementChild as HTMLElement).style.background).toBe(PRUNED_FILL);
  });
});

describe('Inspector on a LLaVA-NeXT trace (tiles, base view, newlines)', () => {
  const nextTrace = () =>
    makeTrace({
      rows: 2,
      cols: 2,
      layout: NEXT_LAYOUT,
      image: { width: 120, height: 60 },
      stages: [
        { afterLayer: 3, keep: 10 },
        { afterLayer: 5, keep: 5 },
      ],
    });

  it('places every token by the layout: footprints in fractions of the image, newlines beside their row', () => {
    const view = traceToView(nextTrace());
    expect(view.visualTokens).toBe(14);
    const { tokens, tiles } = view.layout!;
    expect(tiles.map((t) => t.rect)).toEqual([
      { x: 0, y: 0, width: 1, height: 1 },
      { x: 0, y: 0, width: 0.5, height: 1 },
      { x: 0.5, y: 0, width: 0.5, height: 1 },
    ]);
    expect(tokens[3].rect).toEqual({ x: 0.5, y: 0.5, width: 0.5, height: 0.5 }); // base view, row 2, column 2
    expect(tokens[6].rect).toEqual({ x: 0.5, y: 0, width: 0.25, height: 0.5 }); // tile 2, row 1, column 1
    expect(tokens[13]).toMatchObject({ kind: 'newline', tile: 2, row: 1, rect: { x: 1, y: 0.5, width: 0, height: 0.5 } });
    expect(describeToken(view, 13)).toBe('Token 13, the newline after row 2 of tile 2');
    expect(describeToken(view, 6)).toBe('Token 6 (tile 2, row 1, column 1)');
    expect(describeToken(view, 1)).toBe('Token 1 (base view, row 1, column 2)');
    // Every patch counts where its centre lies (base and tiles alike); newlines do not count.
    const all = positionHistogram(view, new Array(14).fill(true));
    expect(all).toEqual({ rows: [6, 6], cols: [6, 6] });
  });

  it('draws the original image with tile outlines and the base view beside it; pruned tokens are dimmed at every layer', () => {
    const trace = nextTrace();
    render(<Inspector view={traceToView(trace)} imageUrl="data:image/png;base64,AA==" />);
    const map = screen.getByRole('group', { name: /14 visual tokens over the original image/ });
    expect([...map.querySelectorAll('[data-tile]')].map((el) => el.getAttribute('data-tile'))).toEqual(['0,0', '0,1']);
    expect(within(map).getByTestId('base-view').querySelectorAll('[data-patch]')).toHaveLength(4);
    expect(within(map).getByTestId('tiled-image').querySelectorAll('[data-patch]')).toHaveLength(8);
    expect(screen.getByRole('img', { name: /Base view: the whole upload stretched square/ })).toBeTruthy();
    const slider = screen.getByRole('slider');
    for (const record of trace.layers) {
      fireEvent.change(slider, { target: { value: String(record.layer - 1) } });
      expect(screen.getByTestId('inspector-kept').textContent).toBe(String(record.visualIn));
      const shown = [...map.querySelectorAll('[data-kept="true"]')].map((el) => Number(el.getAttribute('data-patch')));
      expect(shown.sort((a, b) => a - b)).toEqual(visualTokensAt(trace, record.layer));
    }
    fireEvent.mouseOver(map.querySelector('[data-patch="8"]')!);
    expect(screen.getByTestId('patch-card').textContent).toContain('the newline after row 1 of tile 2');
    expect(screen.getAllByRole('group', { name: /heatmap/ })).toHaveLength(6);
  });
});
