import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { Inspector } from '../../../src/renderer/features/inspector/Inspector.js';
import { droppedAfter, positionHistogram, presentAt, type TraceView } from '../../../src/renderer/features/inspector/traceView.js';

afterEach(cleanup);

/**
 * A small trace built the way TransPrune runs: at each pruning layer the surviving patches are scored and
 * the top `keep` stay. Scores are a fixed pseudo-random field, so the expected survivors are computed
 * here independently of the inspector code.
 */
function buildTrace(rows = 4, cols = 4, numLayers = 8, schedule = [{ layer: 2, keep: 12 }, { layer: 4, keep: 6 }]): TraceView {
  const n = rows * cols;
  let alive = Array.from({ length: n }, (_, i) => i);
  const score = (patch: number, layer: number) => ((patch * 7919 + layer * 104729) % 97) / 97;
  const steps = schedule.map(({ layer, keep }) => {
    const before = alive.length;
    const combined = Array.from({ length: n }, (_, p) => (alive.includes(p) ? score(p, layer) : null));
    const kept = [...alive].sort((a, b) => combined[b]! - combined[a]! || a - b).slice(0, keep).sort((a, b) => a - b);
    alive = kept;
    return { layer, before, kept, scores: { ttv: combined.map((v) => (v === null ? null : v / 2)), iga: combined, combined } };
  });
  const visualCounts = Array.from({ length: numLayers }, (_, l) => {
    const last = [...schedule].reverse().find((s) => s.layer < l);
    return last ? last.keep : n;
  });
  return {
    method: 'transprune-high',
    numLayers,
    grid: { rows, cols },
    resizePolicy: 'pad',
    modelResolution: 336,
    visualCounts,
    layerTflops: visualCounts.map((c) => c * 0.01),
    layerTflopsUnpruned: visualCounts.map(() => n * 0.01),
    steps,
  };
}

describe('trace view helpers', () => {
  it('knows where each patch was dropped and what is present at every layer', () => {
    const view = buildTrace();
    const dropped = droppedAfter(view);
    for (let layer = 0; layer < view.numLayers; layer++) {
      expect(presentAt(dropped, layer).filter(Boolean).length).toBe(view.visualCounts[layer]);
    }
    const [first, second] = view.steps;
    for (let p = 0; p < 16; p++) {
      const expected = !first.kept.includes(p) ? 2 : !second.kept.includes(p) ? 4 : null;
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
    const view = buildTrace();
    const { container } = render(<Inspector view={view} />);
    const slider = screen.getByRole('slider');
    for (let layer = 0; layer < view.numLayers; layer++) {
      fireEvent.change(slider, { target: { value: String(layer) } });
      expect(screen.getByTestId('inspector-layer').textContent).toBe(String(layer + 1));
      expect(screen.getByTestId('inspector-kept').textContent).toBe(String(view.visualCounts[layer]));
      expect(container.querySelectorAll('[data-kept="true"]')).toHaveLength(view.visualCounts[layer]);
    }
  });

  it('hovering a patch shows where it was dropped and its scores', () => {
    const view = buildTrace();
    const { container } = render(<Inspector view={view} />);
    const droppedEarly = [...Array(16).keys()].find((p) => !view.steps[0].kept.includes(p))!;
    fireEvent.mouseEnter(container.querySelector(`[data-patch="${droppedEarly}"]`)!);
    const card = screen.getByTestId('patch-card');
    expect(card.textContent).toContain('dropped after layer 3');
    expect(card.textContent).toContain(`COMBINED ${view.steps[0].scores.combined![droppedEarly]!.toFixed(4)}`);
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
    expect(screen.getByRole('img', { name: /Visual tokens and TFLOPs per layer/ }).querySelector('svg')).not.toBeNull();
  });

  it('exports through the callbacks and reports failures inline', async () => {
    const calls: string[] = [];
    render(
      <Inspector
        view={buildTrace()}
        onExportTrace={async (format) => {
          calls.push(format);
          if (format === 'csv') throw new Error('disk full');
        }}
      />,
    );
    fireEvent.click(screen.getByRole('button', { name: 'Export trace JSON' }));
    expect(await screen.findByRole('status', { name: '' })).toBeTruthy();
    expect(await screen.findByText('Trace JSON exported.')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Export trace CSV' }));
    expect((await screen.findByRole('alert')).textContent).toContain('disk full');
    expect(calls).toEqual(['json', 'csv']);
    expect((screen.getByRole('button', { name: 'Export overlay PNG' }) as HTMLButtonElement).disabled).toBe(true);
  });
});
