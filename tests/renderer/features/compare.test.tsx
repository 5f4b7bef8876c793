import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnswerStats } from '../../../src/shared/conversation.js';
import { parseMethod } from '../../../src/shared/pruning.js';
import { CompareView, type ComparePane } from '../../../src/renderer/features/compare/CompareView.js';
import { amountVerdict, compareMetrics, speedVerdict } from '../../../src/renderer/features/compare/verdict.js';
import { diffWords } from '../../../src/renderer/features/compare/diffWords.js';
import { METHOD_CHOICES } from '../../../src/renderer/features/settings/methods.js';

afterEach(cleanup);

const stats = (prefillMs: number, tflops: number, extra: Partial<AnswerStats> = {}): AnswerStats => ({
  timeToFirstTokenMs: prefillMs + 100,
  prefillMs,
  decodeTokensPerSec: 20,
  generatedTokens: 10,
  visualTokensKept: 72,
  visualTokensTotal: 576,
  tflops,
  tflopsUnpruned: 3.817,
  executionProvider: 'cpu',
  ...extra,
});

describe('word diff', () => {
  it('marks words outside the longest common subsequence and joins back to the text', () => {
    const left = 'A red car parked by the lake.';
    const right = 'A blue car parked near the lake.';
    const d = diffWords(left, right);
    expect(d.left.map((s) => s.text).join('')).toBe(left);
    expect(d.right.map((s) => s.text).join('')).toBe(right);
    expect(d.left.filter((s) => s.changed).map((s) => s.text.trim())).toEqual(['red', 'by']);
    expect(d.right.filter((s) => s.changed).map((s) => s.text.trim())).toEqual(['blue', 'near']);
  });

  it('handles identical, empty and fully different answers', () => {
    expect(diffWords('same words', 'same words').left).toEqual([{ text: 'same words', changed: false }]);
    expect(diffWords('', 'new').right).toEqual([{ text: 'new', changed: true }]);
    expect(diffWords('one two', 'three').left).toEqual([{ text: 'one two', changed: true }]);
  });
});

describe('compare view', () => {
  const pane = (method: string, text: string, s?: AnswerStats, status: ComparePane['status'] = 'done'): ComparePane => ({
    method,
    text,
    status,
    stats: s,
  });

  it('charts speed and compute side by side with the difference in words, highlights differences, and notes shared layers', () => {
    render(
      <CompareView
        left={pane('none', 'A red car by the lake.', stats(800, 3.817))}
        right={pane('transprune-high', 'A blue car by the lake.', stats(320, 1.557, { sharedLayers: 7, visualTokensKept: 72 }))}
        asked={{ text: 'What is by the lake?', imageUrl: 'thumb://lake' }}
        onMethodChange={() => {}}
        composer={null}
      />,
    );
    const chart = screen.getByRole('region', { name: 'Speed and compute' });
    const verdict = (metric: string) => chart.querySelector(`[data-metric="${metric}"] [data-testid=verdict]`)!.textContent;
    expect(verdict('prefill')).toBe('2.50× faster');
    expect(verdict('first-token')).toBe(`${(900 / 420).toFixed(2)}× faster`);
    expect(verdict('compute')).toBe('59% fewer'); // 1.557 of 3.817
    expect(verdict('visual-tokens')).toBe('the same');
    expect(chart.textContent).toContain('No pruning');
    expect(chart.textContent).toContain('TransPrune High');
    expect(chart.textContent).toContain('layers 1–7 ran once for both');
    const asked = screen.getByRole('region', { name: 'Compared question' });
    expect(asked.textContent).toBe('What is by the lake?');
    expect(screen.getByRole('img', { name: 'What both panes answer about' }).getAttribute('src')).toBe('thumb://lake');
    const marked = (side: string) =>
      [...screen.getByTestId(`compare-text-${side}`).querySelectorAll('mark')].map((m) => m.textContent!.trim());
    expect(marked('left')).toEqual(['red']);
    expect(marked('right')).toEqual(['blue']);
  });

  it('streams plain text until both are done, and lets each pane pick its method', () => {
    const onMethodChange = vi.fn();
    render(
      <CompareView
        left={pane('none', 'A red', undefined, 'streaming')}
        right={pane('transprune-high', 'A blue car.')}
        onMethodChange={onMethodChange}
        composer={<p>input</p>}
      />,
    );
    expect(screen.getByTestId('compare-text-left').querySelector('mark')).toBeNull();
    expect(screen.getByRole('region', { name: 'Left answer' }).getAttribute('aria-busy')).toBe('true');
    fireEvent.change(screen.getByLabelText('Right pane method'), { target: { value: 'fastv' } });
    expect(onMethodChange).toHaveBeenCalledWith('right', 'fastv');
    expect(screen.getByText('input')).toBeTruthy();
  });

  it('resizes the panes from the keyboard within limits', () => {
    render(<CompareView left={pane('none', '')} right={pane('none', '')} onMethodChange={() => {}} composer={null} />);
    const divider = screen.getByRole('separator');
    fireEvent.keyDown(divider, { key: 'ArrowRight' });
    expect(divider.getAttribute('aria-valuenow')).toBe('55');
    fireEvent.keyDown(divider, { key: 'End' });
    expect(divider.getAttribute('aria-valuenow')).toBe('80');
    fireEvent.keyDown(divider, { key: 'ArrowRight' });
    expect(divider.getAttribute('aria-valuenow')).toBe('80');
  });

  it('words a difference as people say it: faster or slower, fewer or more, never "0.83× faster"', () => {
    expect(speedVerdict(121, 100)).toBe('1.21× faster');
    expect(speedVerdict(100, 117)).toBe('17% slower');
    expect(speedVerdict(100, 100.3)).toBe('about the same');
    expect(amountVerdict(576, 72)).toBe('88% fewer');
    expect(amountVerdict(100, 112)).toBe('12% more');
    expect(amountVerdict(0, 0)).toBe('the same');
    const metrics = compareMetrics(stats(900, 4), stats(300, 1));
    expect(metrics.map((m) => [m.id, m.left, m.right])).toEqual([
      ['first-token', 1000, 400],
      ['prefill', 900, 300],
      ['compute', 4, 1],
      ['visual-tokens', 72, 72],
    ]);
  });

  it('marks both panes when a stop cut them short, keeping their text', () => {
    render(
      <CompareView
        left={pane('none', 'A red', undefined, 'interrupted')}
        right={pane('transprune-high', 'A blue car', undefined, 'interrupted')}
        onMethodChange={() => {}}
        composer={null}
      />,
    );
    for (const [side, text] of [
      ['Left', 'A red'],
      ['Right', 'A blue car'],
    ]) {
      const region = screen.getByRole('region', { name: `${side} answer` });
      expect(region.dataset.status).toBe('interrupted');
      expect(region.textContent).toContain('Stopped before the end.');
      expect(region.textContent).toContain(text);
    }
  });

  it('takes any method string the CLI accepts, passing on only valid ones', () => {
    const onMethodChange = vi.fn();
    render(<CompareView left={pane('none', '')} right={pane('transprune-high', '')} onMethodChange={onMethodChange} composer={null} />);
    fireEvent.change(screen.getByLabelText('Right pane method'), { target: { value: '__custom__' } });
    const text = screen.getByLabelText('Right pane method, as a method string');
    fireEvent.change(text, { target: { value: 'fastv:k=3,r=' } });
    expect(text.getAttribute('aria-invalid')).toBe('true');
    expect(onMethodChange).not.toHaveBeenCalled();
    fireEvent.change(text, { target: { value: 'fastv:k=3,r=0.75' } });
    expect(onMethodChange).toHaveBeenCalledWith('right', 'fastv:k=3,r=0.75');
  });

  it('every offered method is one the pruning module parses', () => {
    for (const choice of METHOD_CHOICES) expect(() => parseMethod(choice.value)).not.toThrow();
  });
});
