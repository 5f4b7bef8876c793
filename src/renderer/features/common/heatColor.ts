/** A perceptually ordered dark-blue -> yellow ramp (close to viridis) for scores normalised to 0..1. */
const STOPS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function heatColor(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [r, g, b] = STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * f));
  return `rgb(${r} ${g} ${b})`;
}

/** Min-max normalisation that ignores missing values (null stays null). */
export function normalise(values: (number | null)[]): (number | null)[] {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return values;
  const lo = Math.min(...present);
  const span = Math.max(...present) - lo;
  return values.map((v) => (v === null ? null : span > 0 ? (v - lo) / span : 0.5));
}
