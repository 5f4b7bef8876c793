import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { gemmModel } from '../../src/cli/bench/gemm.js';
import {
  SessionFactory,
  currentHost,
  providerCandidates,
  shortReason,
  type HostInfo,
  type ProviderReport,
} from '../../src/engine/runtime/providers.js';

const host = (platform: NodeJS.Platform, arch: string, vulkan = true): HostInfo => ({ platform, arch, bindingDir: '/nonexistent', vulkan });

describe('provider candidates', () => {
  it('tries an explicit provider, then cpu', () => {
    expect(providerCandidates('cuda', host('linux', 'x64'))).toEqual(['cuda', 'cpu']);
    expect(providerCandidates('cpu', host('linux', 'x64'))).toEqual(['cpu']);
  });

  it('auto lists what each platform can have, cpu last', () => {
    expect(providerCandidates('auto', host('win32', 'x64'))).toEqual(['dml', 'webgpu', 'cpu']);
    expect(providerCandidates('auto', host('darwin', 'arm64'))).toEqual(['coreml', 'webgpu', 'cpu']);
    expect(providerCandidates('auto', host('linux', 'x64'))).toEqual(['webgpu', 'cpu']);
    expect(providerCandidates('auto', host('linux', 'x64', false))).toEqual(['cpu']); // no Vulkan loader, no WebGPU
    expect(providerCandidates('auto', host('linux', 'arm64'))).toEqual(['cpu']);
  });

  it('shortens ORT errors to their message', () => {
    const raw =
      '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\nstack';
    expect(shortReason(new Error(raw))).toBe('Failed to get a WebGPU adapter: No supported adapters');
  });

  it('auto includes cuda only where its provider libraries sit beside the binding', () => {
    // The npm package does not carry them, and this machine never fetched them.
    expect(providerCandidates('auto').includes('cuda')).toBe(false);
  });
});

describe('session creation with fallback (real onnxruntime-node on this machine)', () => {
  const model = gemmModel(2, 3, 4);
  const x = new Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);

  async function runOn(requested: 'cuda' | 'webgpu' | 'dml' | 'coreml' | 'cpu' | 'auto') {
    const factory = new SessionFactory(requested);
    const session = await factory.create(model);
    const { y } = await session.run({ x });
    await session.release();
    return { report: factory.report!, y: y.data as Float32Array };
  }

  it('cpu runs on cpu with no failures', async () => {
    const { report, y } = await runOn('cpu');
    expect(report).toEqual({ requested: 'cpu', active: 'cpu', failures: [] });
    expect(y.length).toBe(8);
  });

  it('cuda without its libraries falls back to cpu and says why', async () => {
    const { report } = await runOn('cuda');
    expect(report.active).toBe('cpu');
    expect(report.failures).toHaveLength(1);
    expect(report.failures[0].provider).toBe('cuda');
    expect(report.failures[0].reason).toMatch(/^CUDA is not available: onnxruntime's CUDA provider libraries are not installed/);
  });

  it('webgpu without an adapter falls back to cpu and says why', async () => {
    const { report } = await runOn('webgpu');
    // No GPU here: without a Vulkan loader that is known before trying; with one, Dawn finds no adapter.
    expect(report.active).toBe('cpu');
    expect(report.failures[0]).toMatchObject({ provider: 'webgpu' });
    expect(report.failures[0].reason).toMatch(currentHost().vulkan ? /adapter/i : /^WebGPU is not available: no Vulkan loader/);
  });

  it('a provider known not to start is reported in words, with nothing printed by native code', () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'helpers', 'providers-child.ts')], {
      encoding: 'utf8',
    });
    expect(child.status, child.stderr).toBe(0);
    const { factories, probes } = JSON.parse(child.stdout);
    expect(factories.map((r: ProviderReport) => r.active)).toEqual(['cpu', 'cpu']);
    // Neither onnxruntime's C++ log line for the missing CUDA library nor Dawn's "Couldn't load Vulkan".
    expect(child.stderr).not.toMatch(/onnxruntime|Vulkan|\.cc:\d+/);
    expect(child.stderr).toBe('');
    if (!currentHost().vulkan)
      expect(probes.find((p: { name: string }) => p.name === 'webgpu')).toMatchObject({
        loads: false,
        error: 'WebGPU is not available: no Vulkan loader (libvulkan.so.1) is installed',
      });
  });

  it('a provider this platform lacks falls back to cpu', async () => {
    const { report } = await runOn(process.platform === 'win32' ? 'coreml' : 'dml');
    expect(report.active).toBe('cpu');
    expect(report.failures[0].reason).toMatch(/backend not found/);
  });

  it('outputs are the same whichever request ended on cpu', async () => {
    const a = await runOn('cpu');
    const b = await runOn('auto');
    expect(Array.from(b.y)).toEqual(Array.from(a.y));
  });

  it('once chosen, the provider is reused without retrying the failed ones', async () => {
    const factory = new SessionFactory('webgpu');
    await (await factory.create(model)).release();
    await (await factory.create(model)).release();
    expect(factory.report!.failures).toHaveLength(1);
  });

  it('a corrupt model fails with the cpu error, not a provider story', async () => {
    const factory = new SessionFactory('cpu');
    await expect(factory.create(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow();
    expect(factory.report).toBeUndefined();
  });
});
