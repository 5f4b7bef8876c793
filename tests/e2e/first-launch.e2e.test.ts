import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_DIR } from '../../src/engine/data/demo-model.js';
import { holdsCheckpoint } from '../../src/engine/pack/checkpoint-folder.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { BUILT, launchChromium, requireBuild, screenshots } from './harness.js';

/**
 * What a newcomer's first launch shows, exactly as `npm start` (or the browser preview) gives it: a fresh
 * user-data folder and the repository's resources/demo-model as the bundled model. With a shipped demo model the
 * app installs it and opens on it; without one it opens with no model and says where to get one. The README's
 * first-run screenshot comes from here.
 */

const demoShips = holdsCheckpoint(DEMO_MODEL_DIR);
let host: WebHost;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  requireBuild();
  const userData = mkdtempSync(join(tmpdir(), 'tp-e2e-first-'));
  host = await startWebHost({
    rendererDir: BUILT.renderer,
    engineEntry: BUILT.engine,
    userData,
    port: 0,
    engineStdio: 'ignore',
    bundledModel: DEMO_MODEL_DIR,
  });
  browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
  page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(host.url);
  await page.getByText('Engine ready · cpu').waitFor({ timeout: 240_000 });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await host?.close();
  expect(problems).toEqual([]);
});

describe('first launch', () => {
  it.skipIf(demoShips)('without a demo model: no model yet, and the way to get one', async () => {
    const welcome = page.getByRole('region', { name: 'Get a model' });
    await welcome.waitFor({ timeout: 20_000 });
    expect(await page.getByText('No model installed yet: add one under Models.').count()).toBe(1); // the composer says why it waits
    await screenshots(page, 'firstrun');
    await welcome.getByRole('button', { name: 'Choose a model' }).click();
    await page.getByRole('list', { name: 'Model catalogue' }).waitFor();
  });

  it.skipIf(!demoShips)('with the demo model: it is installed, and a sample question gets a one-word answer', async () => {
    const samples = page.getByRole('region', { name: 'Try a sample' });
    await expect.poll(() => samples.getByRole('listitem').count(), { timeout: 120_000 }).toBe(3);
    await screenshots(page, 'firstrun');
    const first = samples.getByRole('listitem').first();
    await first.getByRole('button', { name: 'Ask' }).click();
    const answer = page.getByTestId('answer-text').last();
    await expect.poll(() => page.locator('[data-status=done]').count(), { timeout: 120_000 }).toBeGreaterThan(0);
    expect((await answer.textContent())?.trim().length).toBeGreaterThan(0);
    await screenshots(page, 'demo-chat');
  });
});
