import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import type { ExecutionProvider, ProviderRequest } from '../../shared/providers.js';

/**
 * Execution provider selection. onnxruntime-node does not fall back by itself: a session created with
 * ['cuda', 'cpu'] throws when CUDA cannot start. So we try one provider at a time, remember why each
 * failed, and keep the first that works for every later session of the same model.
 */

export interface ProviderFailure {
  provider: ExecutionProvider;
  reason: string;
}

/** What the engine reports: the provider asked for, the one running, and why any earlier one was skipped. */
export interface ProviderReport {
  requested: ProviderRequest;
  active: ExecutionProvider;
  failures: ProviderFailure[];
}

export interface HostInfo {
  platform: NodeJS.Platform;
  arch: string;
  /** The folder holding onnxruntime-node's native binding for this platform. */
  bindingDir: string;
  /** A Vulkan loader is installed (what WebGPU needs on Linux). */
  vulkan: boolean;
}

export function currentHost(): HostInfo {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node');
  const bindingDir = join(dirname(pkg), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return { platform: process.platform, arch: process.arch, bindingDir, vulkan: process.platform === 'linux' && vulkanLoaderPresent() };
}

/** CUDA's provider libraries are not in the npm package; they count only when someone put them beside the binding. */
function cudaLibrariesPresent(host: HostInfo): boolean {
  const lib = host.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(join(host.bindingDir, lib));
}

/** Dawn reaches the GPU through Vulkan on Linux; without a loader WebGPU cannot start (and says so on stderr). */
function vulkanLoaderPresent(): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/lib/x86_64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')));
}

/**
 * Why `provider` cannot start on this host, known without trying, or null. Trying anyway makes native
 * code print to stderr before the error comes back (onnxruntime's C++ log line for a provider library
 * that is not there, Dawn's "Couldn't load Vulkan"); the reason in words replaces that noise.
 */
export function knownUnavailable(provider: string, host: HostInfo = currentHost()): string | null {
  if (provider === 'cuda' && !cudaLibrariesPresent(host))
    return "CUDA is not available: onnxruntime's CUDA provider libraries are not installed (`doctor` says what they need)";
  if (provider === 'webgpu' && host.platform === 'linux' && !host.vulkan)
    return 'WebGPU is not available: no Vulkan loader (libvulkan.so.1) is installed';
  return null;
}

/** The providers to try, in order, ending with CPU (which always works). */
export function providerCandidates(request: ProviderRequest, host: HostInfo = currentHost()): ExecutionProvider[] {
  if (request !== 'auto') return request === 'cpu' ? ['cpu'] : [request, 'cpu'];
  const { platform, arch } = host;
  const candidates: ExecutionProvider[] = [];
  if ((platform === 'linux' || platform === 'win32') && arch === 'x64' && cudaLibrariesPresent(host)) candidates.push('cuda');
  if (platform === 'win32') candidates.push('dml');
  if (platform === 'darwin') candidates.push('coreml');
  // The prebuilt binaries bundle WebGPU everywhere except linux/arm64 (and there is no darwin/x64 build at all).
  const webgpuUsable =
    platform === 'win32' || (platform === 'darwin' && arch === 'arm64') || (platform === 'linux' && arch === 'x64' && host.vulkan);
  if (webgpuUsable) candidates.push('webgpu');
  candidates.push('cpu');
  return candidates;
}

export interface SessionFactoryOptions {
  /** Intra-op threads; ORT picks the physical core count when omitted. */
  threads?: number;
}

/**
 * Worker threads spin between the parallel parts of one run (no wake-up per operator) and stop when it ends.
 * A model is dozens of sessions run one after another, each with its own pool: left spinning after their
 * runs (ORT's default), the pools of the sessions just run steal the cores from the one running now (a 7B
 * int4 decode step: 764 ms against 240 with no spinning at all, and 233 like this).
 */
const THREAD_POOL = { intra_op: { allow_spinning: '1' }, force_spinning_stop: '1' };

/** The first line of an ORT error without the C++ noise (source location, function, failed assertion). */
export function shortReason(err: unknown): string {
  const line = String((err as Error)?.message ?? err)
    .split('\n')[0]
    .trim();
  return line
    .replace(/^\S+\.(cc|cpp|h):\d+ /, '')
    .replace(/^.* was false\. /, '')
    .slice(0, 300);
}

/** Creates the sessions of one model on one provider, choosing the provider on the first session. */
export class SessionFactory {
  readonly #candidates: ExecutionProvider[];
  readonly #failures: ProviderFailure[] = [];
  readonly #host: HostInfo;
  #active: ExecutionProvider | undefined;

  constructor(
    readonly requested: ProviderRequest = 'auto',
    readonly options: SessionFactoryOptions = {},
    host: HostInfo = currentHost(),
  ) {
    this.#host = host;
    this.#candidates = providerCandidates(requested, host);
  }

  /** Known after the first successful `create`. */
  get report(): ProviderReport | undefined {
    return this.#active && { requested: this.requested, active: this.#active, failures: [...this.#failures] };
  }

  async create(model: string | Uint8Array): Promise<InferenceSession> {
    if (this.#active) return this.#createOn(this.#active, model);
    for (const provider of this.#candidates) {
      const unavailable = provider === 'cpu' ? null : knownUnavailable(provider, this.#host);
      if (unavailable) {
        this.#failures.push({ provider, reason: unavailable });
        continue;
      }
      try {
        const session = await this.#createOn(provider, model);
        this.#active = provider;
        return session;
      } catch (err) {
        if (provider === 'cpu') throw err;
        this.#failures.push({ provider, reason: shortReason(err) });
      }
    }
    throw new Error('unreachable: the candidate list always ends with cpu');
  }

  #createOn(provider: ExecutionProvider, model: string | Uint8Array): Promise<InferenceSession> {
    const sessionOptions: InferenceSession.SessionOptions = {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // No per-session CPU arena: every decoder layer is its own session, and an arena keeps its peak (the
      // S x S attention) for the session's life. At LLaVA-NeXT's ~3000 tokens that held 9.7 GiB for a 12-layer,
      // 512-wide model against 0.4 GiB without, at the same speed; a 7B model would need its RAM many times over.
      enableCpuMemArena: false,
      // GPU providers that fail to start log at error level before throwing; we report the reason ourselves.
      logSeverityLevel: provider === 'cpu' ? 3 : 4,
      ...(this.options.threads ? { intraOpNumThreads: this.options.threads, interOpNumThreads: 1 } : {}),
      extra: { session: THREAD_POOL },
    };
    return typeof model === 'string' ? InferenceSession.create(model, sessionOptions) : InferenceSession.create(model, sessionOptions);
  }
}
