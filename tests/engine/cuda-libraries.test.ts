import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cudaLibraries, neededCudaLibraries } from '../../src/engine/worker/cuda-libraries.js';

/**
 * `doctor`'s CUDA check against a stand-in provider file (no GPU build of the provider is installed
 * here): its dynamic string table names the CUDA 12 runtime, cuBLAS and cuDNN 9; one is on
 * LD_LIBRARY_PATH, the others are reported missing.
 */
describe('CUDA libraries the provider needs', () => {
  const root = mkdtempSync(join(tmpdir(), 'tp-cuda-'));
  const provider = join(root, 'libonnxruntime_providers_cuda.so');
  writeFileSync(
    provider,
    Buffer.concat([
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]),
      Buffer.from('\0libcublasLt.so.12\0libcudart.so.12\0libcudnn.so.9\0libstdc++.so.6\0libcudnn.so.9\0'),
    ]),
  );

  it('reads the sonames and their major versions from the file', () => {
    expect(neededCudaLibraries(provider)).toEqual(['libcublasLt.so.12', 'libcudart.so.12', 'libcudnn.so.9']);
  });

  it('says which the machine has and which are missing', () => {
    const libDir = join(root, 'cuda', 'lib64');
    mkdirSync(libDir, { recursive: true });
    writeFileSync(join(libDir, 'libcudart.so.12'), '');
    const found = cudaLibraries(provider, { LD_LIBRARY_PATH: libDir }, new Map()); // an empty loader cache: a machine without CUDA
    expect(found).toEqual([
      { soname: 'libcublasLt.so.12', what: 'cuBLASLt 12', path: null },
      { soname: 'libcudart.so.12', what: 'CUDA runtime 12', path: join(libDir, 'libcudart.so.12') },
      { soname: 'libcudnn.so.9', what: 'cuDNN 9', path: null },
    ]);
  });
});
