import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import type { ProviderProbe } from '../../shared/ipc.js';
import { knownUnavailable } from '../runtime/providers.js';

/**
 * Which onnxruntime execution providers actually work here. `listSupportedBackends()` only says
 * what the binding was built with; a GPU provider can still fail to initialise (no driver, no
 * CUDA libraries), and session creation then throws instead of falling back. So each one is
 * proven by creating and running a one-node model on it.
 */

const { onnx } = onnxProto;

/** Preferred first. Providers not listed (e.g. tensorrt, which builds engines per model) are probed but never chosen. */
const PREFERENCE = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

/** y = x + x over float32[1, 4]: the smallest graph that makes a provider compute. */
export function probeModel(): Uint8Array {
  const tensor = (name: string) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'transprune-studio-probe',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'probe', node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }], input: [tensor('x')], output: [tensor('y')] },
  }).finish();
}

export const PROBE_INPUT = Float32Array.of(1, 2, 3, 4);

/** Runs the probe model once; throws unless it returns 2x. */
export async function runProbe(session: ort.InferenceSession): Promise<void> {
  const { y } = await session.run({ x: new ort.Tensor('float32', PROBE_INPUT, [1, 4]) });
  const out = y.data as Float32Array;
  if (!PROBE_INPUT.every((v, i) => out[i] === 2 * v)) throw new Error(`probe computed ${Array.from(out)}, expected x + x`);
}

export async function createProbeSession(provider: string): Promise<ort.InferenceSession> {
  // logSeverityLevel 4 (fatal): a provider that fails is reported in the probe, not as native log noise.
  return ort.InferenceSession.create(probeModel(), { executionProviders: [provider], logSeverityLevel: 4 });
}

export async function probeProviders(): Promise<ProviderProbe[]> {
  const probes: ProviderProbe[] = [];
  for (const { name, bundled } of ort.listSupportedBackends()) {
    const missing = bundled ? null : missingProviderLibrary(name);
    if (missing) {
      // Creating a session would only fail loading this file (and log native errors about it).
      probes.push({ name, bundled, loads: false, error: `not installed: ${missing} is missing` });
      continue;
    }
    const unavailable = knownUnavailable(name);
    if (unavailable) {
      probes.push({ name, bundled, loads: false, error: unavailable });
      continue;
    }
    try {
      const session = await createProbeSession(name);
      try {
        await runProbe(session);
      } finally {
        await session.release();
      }
      probes.push({ name, bundled, loads: true });
    } catch (e) {
      probes.push({ name, bundled, loads: false, error: firstLine(e) });
    }
  }
  return probes;
}

/** The provider library that onnxruntime-node's install script fetches separately (CUDA, TensorRT), if it is absent. */
function missingProviderLibrary(name: string): string | null {
  const binding = join(
    dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
    '..',
    'bin',
    'napi-v6',
    process.platform,
    process.arch,
  );
  const file = process.platform === 'win32' ? `onnxruntime_providers_${name}.dll` : `libonnxruntime_providers_${name}.so`;
  return existsSync(join(binding, file)) ? null : file;
}

export function preferredProvider(probes: ProviderProbe[]): string {
  const loading = new Set(probes.filter((p) => p.loads).map((p) => p.name));
  const choice = PREFERENCE.find((name) => loading.has(name));
  if (!choice) throw new Error(`no execution provider loads: ${probes.map((p) => `${p.name}: ${p.error}`).join('; ')}`);
  return choice;
}

export function onnxruntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** onnxruntime's messages start with a source location and a failed assertion; keep what a user can act on. */
function firstLine(e: unknown): string {
  const line = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  const afterAssertion = line.split(' was false. ').at(-1)!;
  return afterAssertion.slice(0, 200);
}
