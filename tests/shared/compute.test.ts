import { describe, expect, it } from 'vitest';
import { flopsUnit, formatFlops, formatFlopsShare } from '../../src/shared/compute.js';

describe('compute, printed one way everywhere', () => {
  it('three significant digits in the unit that keeps the number at or above 1', () => {
    expect(formatFlops(1.557e12)).toBe('1.56 TFLOPs');
    expect(formatFlops(0.5e12)).toBe('500 GFLOPs');
    expect(formatFlops(25.6e9)).toBe('25.6 GFLOPs');
    expect(formatFlops(43.1e6)).toBe('43.1 MFLOPs');
    expect(formatFlops(2048)).toBe('2.05 kFLOPs');
    expect(formatFlops(0)).toBe('0 FLOPs');
    expect(flopsUnit(3.8e12)).toEqual({ unit: 'TFLOPs', scale: 1e12 });
  });

  it('a share of the unpruned run, in percent to one decimal', () => {
    expect(formatFlopsShare(1.557e12, 3.817e12)).toBe('1.56 TFLOPs (40.8%)');
    expect(formatFlopsShare(0, 0)).toBe('0 FLOPs (100%)');
  });
});
