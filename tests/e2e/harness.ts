import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
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

/** Where the e2e tests put their screenshots (out/ is ignored); `UPDATE_SCREENSHOTS=1` also refreshes the README's in docs/screenshots. */
export const SHOTS = join(ROOT, 'out', 'screenshots');
const DOCS_SHOTS = join(ROOT, 'docs', 'screenshots');
const REVIEW_SIZES = [
  { width: 900, height: 600 },
  { width: 1600, height: 1000 },
];
const DOCS_SIZE = { width: 1280, height: 860 };
/** The screenshots the README shows. */
const README_SHOTS = new Set(['chat', 'demo-chat', 'compare', 'inspector', 'firstrun']);

/**
 * Screenshots of the page as it is now, narrow and wide, light and dark (out/screenshots/<name>-<w>x<h>-<scheme>.png),
 * plus the README's own (docs/screenshots) when asked; the viewport and colour scheme are put back afterwards.
 */
export async function screenshots(page: Page, name: string, docsSize = DOCS_SIZE): Promise<void> {
  const before = page.viewportSize() ?? DOCS_SIZE;
  mkdirSync(SHOTS, { recursive: true });
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    for (const size of REVIEW_SIZES) {
      await page.setViewportSize(size);
      await page.waitForTimeout(150); // charts follow their container's width
      await page.screenshot({ path: join(SHOTS, `${name}-${size.width}x${size.height}-${colorScheme}.png`) });
    }
    if (process.env.UPDATE_SCREENSHOTS === '1' && README_SHOTS.has(name)) {
      await page.setViewportSize(docsSize);
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(DOCS_SHOTS, `${name}${colorScheme === 'dark' ? '-dark' : ''}.png`) });
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(before);
}
