import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { findChromium } from '../../src/cli/binaries.mjs';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BUILT = {
  renderer: join(ROOT, 'out', 'renderer'),
  engine: join(ROOT, 'out', 'main', 'engine.cjs'),
  main: join(ROOT, 'out', 'main', 'index.cjs'),
};

export function requireBuild(): void {
  for (const path of [join(BUILT.renderer, 'index.html'), BUILT.engine, BUILT.main]) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` before the e2e tests`);
  }
}

/**
 * Debian's Chromium, headless, offline, with a fresh profile (--user-data-dir). A persistent
 * context is how Playwright takes a profile folder; open pages with `context.newPage()`.
 */
export async function launchChromium(options: { viewport?: { width: number; height: number } } = {}): Promise<BrowserContext> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error('no Chromium found: `apt-get install -y chromium` (or set CHROMIUM_PATH)');
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'tp-chromium-')), {
    executablePath,
    headless: true,
    viewport: options.viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
