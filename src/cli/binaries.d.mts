export interface ElectronBinary {
  path: string | null;
  /** Why there is no binary; null when `path` is set. */
  reason: string | null;
}
export function findElectronBinary(root?: string): ElectronBinary;
export function findChromium(): string | null;
