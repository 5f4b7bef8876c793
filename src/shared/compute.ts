/**
 * Compute as the app, the CLI and the exports print it: three significant digits in the SI unit that
 * keeps the number at or above 1 ("1.56 TFLOPs", "43.1 MFLOPs"), and "0 FLOPs" for none. The paper's
 * count (Eq. 7: multiply-accumulates over the visual tokens) is printed as FLOPs too, as the paper does.
 */
export function formatFlops(flops: number): string {
  const { unit, scale } = flopsUnit(flops);
  return `${Number((flops / scale).toPrecision(3))} ${unit}`;
}

/** The unit `flops` reads best in, and the FLOPs in one of it (chart axes use it for a whole series). */
export function flopsUnit(flops: number): { unit: 'TFLOPs' | 'GFLOPs' | 'MFLOPs' | 'kFLOPs' | 'FLOPs'; scale: number } {
  const units = [
    { unit: 'TFLOPs', scale: 1e12 },
    { unit: 'GFLOPs', scale: 1e9 },
    { unit: 'MFLOPs', scale: 1e6 },
    { unit: 'kFLOPs', scale: 1e3 },
  ] as const;
  return units.find((u) => flops >= u.scale) ?? { unit: 'FLOPs', scale: 1 };
}

/** A run's compute and its share of the same run unpruned: "1.56 TFLOPs (40.8%)". */
export function formatFlopsShare(flops: number, unpruned: number): string {
  return `${formatFlops(flops)} (${Math.round((unpruned > 0 ? flops / unpruned : 1) * 1000) / 10}%)`;
}
