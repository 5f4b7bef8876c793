import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cpus, platform, arch } from 'node:os';
import { env as ortEnv } from 'onnxruntime-node';

/** Shared output of every benchmark: a JSON file in bench-results/ (the table is printed with src/cli/table.ts). */

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
