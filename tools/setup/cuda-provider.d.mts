export const NUGET_INDEX: string;
export interface CudaManifest {
  id: string;
  version: string;
  binDir: string;
  files: { target: string; path: string }[];
}
export function cudaManifest(pkgDir: string, platform?: string): CudaManifest | null;
export function installCudaProvider(options: {
  pkgDir: string;
  index?: string;
  binDir?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
}): Promise<string[]>;
