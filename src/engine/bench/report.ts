import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cpus, platform, arch } from 'node:os';
import { env as ortEnv } from 'onnxruntime-node';

/** Shared output of every benchmark: a printed table and a JSON file in bench-results/. */

export type Cell = string | number;

/** Prints rows as an aligned table; numbers get `digits` decimals. */
export function printTable(headers: string[], rows: Cell[][], digits = 2): void {
  const text = rows.map((row) => row.map((c) => (typeof c === 'number' ? formatNumber(c, digits) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of text) console.log(line(row));
}

function formatNumber(n: number, digits: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 1000 ? n.toFixed(0) : n.toFixed(digits);
}

/** The machine a result was measured on. */
export function machineInfo() {
  const cpu = cpus();
  return {
    platform: platform(),
    arch: arch(),
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    node: process.version,
    onnxruntime: ortEnv.versions.node ?? ortEnv.versions.common,
  };
}

/** Writes bench-results/<name>-<timestamp>.json and returns its path. */
export async function writeBenchResult(name: string, result: object, dir = 'bench-results'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = resolve(join(dir, `${name}-${stamp}.json`));
  await writeFile(
    path,
    `${JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine: machineInfo(), ...result }, null, 2)}\n`,
  );
  return path;
}
