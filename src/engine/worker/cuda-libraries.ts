import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which CUDA libraries (and major versions) the installed CUDA execution provider links against, and
 * whether this machine has them. The provider's ELF file names each one it needs (DT_NEEDED, e.g.
 * `libcudart.so.12`, `libcudnn.so.9`); the dynamic loader finds them through its cache
 * (`ldconfig -p`) or LD_LIBRARY_PATH.
 */

export interface CudaLibrary {
  /** The soname the provider asks for, e.g. libcudnn.so.9. */
  soname: string;
  /** What it is, and which major version: CUDA runtime 12, cuDNN 9, ... */
  what: string;
  /** Where the loader would find it; null = missing. */
  path: string | null;
}

const KNOWN: Record<string, string> = {
  cudart: 'CUDA runtime',
  cublas: 'cuBLAS',
  cublasLt: 'cuBLASLt',
  cufft: 'cuFFT',
  curand: 'cuRAND',
  cudnn: 'cuDNN',
};

/** The CUDA sonames a shared library names (read from its bytes: the dynamic string table is plain text). */
export function neededCudaLibraries(providerFile: string): string[] {
  const text = readFileSync(providerFile).toString('latin1');
  const names = new Set<string>();
  for (const match of text.matchAll(/lib(cudart|cublasLt|cublas|cufft|curand|cudnn)\.so\.(\d+)\0/g))
    names.add(`lib${match[1]}.so.${match[2]}`);
  return [...names].sort();
}

/** Folders the dynamic loader searches besides its cache. */
function searchDirs(env: NodeJS.ProcessEnv): string[] {
  return [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/local/cuda/lib64'];
}

function loaderCache(): Map<string, string> {
  try {
    const output = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return new Map([...output.matchAll(/^\s*(\S+) \(.*\) => (\S+)$/gm)].map((m) => [m[1], m[2]]));
  } catch {
    return new Map();
  }
}

/** Each CUDA library the provider needs, with where this machine has it (null when it does not). */
export function cudaLibraries(providerFile: string, env: NodeJS.ProcessEnv = process.env, cache = loaderCache()): CudaLibrary[] {
  return neededCudaLibraries(providerFile).map((soname) => {
    const [, base, major] = soname.match(/^lib(\w+)\.so\.(\d+)$/)!;
    const inDirs = searchDirs(env)
      .map((dir) => join(dir, soname))
      .find((path) => existsSync(path));
    return { soname, what: `${KNOWN[base] ?? base} ${major}`, path: inDirs ?? cache.get(soname) ?? null };
  });
}
