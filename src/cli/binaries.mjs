// Finds the optional binaries of a development install (Electron, a Chromium for the browser tests)
// without triggering downloads: `require('electron')` would start one when the binary is missing, so
// the Electron check reads the package's files directly. Plain JavaScript, because the setup scripts
// in tools/setup run it with node before any TypeScript tooling exists; `doctor` reports what it finds.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The Electron executable, or null with the reason it is missing. */
export function findElectronBinary(root = ROOT) {
  const pkgDir = join(root, 'node_modules', 'electron');
  if (!existsSync(join(pkgDir, 'package.json'))) return { path: null, reason: 'the electron package is not installed' };
  let relative;
  try {
    relative = readFileSync(join(pkgDir, 'path.txt'), 'utf8').trim();
  } catch {
    return { path: null, reason: 'the Electron binary was never downloaded (node_modules/electron/path.txt is missing)' };
  }
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const path = override ? join(override, relative) : join(pkgDir, 'dist', relative);
  return existsSync(path) ? { path, reason: null } : { path: null, reason: `the Electron binary is missing at ${path}` };
}

const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium the browser tests drive (CHROMIUM_PATH overrides), or null. */
export function findChromium() {
  const candidates = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : CHROMIUM_CANDIDATES;
  return candidates.find((path) => existsSync(path)) ?? null;
}
