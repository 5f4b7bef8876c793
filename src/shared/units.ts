/** Byte sizes and parameter counts as people read them, the same in main's messages and the renderer. */

/** Decimal units, as disks and Hugging Face's file listings count them: "14.1 GB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A parameter count the way model cards say it: "7.06B", "282K". */
export function formatParameters(count: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  const [size, unit] = units.find(([size]) => count >= size) ?? [1, ''];
  return `${Number((count / size).toPrecision(3))}${unit}`;
}
