import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { BUILT, launchChromium, requireBuild, screenshots } from './harness.js';

/**
 * Settings' "Local server" switch in the built UI (through the web bridge, whose app core owns the server as
 * Electron main's does): switched on, its URL and key read off the page and copied, the openai client served,
 * the request in the live log, switched off.
 */

let host: WebHost;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  requireBuild();
  const userData = mkdtempSync(join(tmpdir(), 'tp-e2e-server-'));
  await importCheckpoint((await makeSyntheticCheckpoint(join(userData, 'hf-tiny'))).dir, modelStoreDir(userData), { name: 'tiny' });
  browser = await launchChromium({ viewport: { width: 1280, height: 900 } });
  page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  host = await startWebHost({ rendererDir: BUILT.renderer, engineEntry: BUILT.engine, userData, port: 0, engineStdio: 'ignore' });
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(host.url).origin });
  await page.goto(host.url);
  await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await host?.close();
});

describe('the Local server switch', () => {
  it('serves the openai client with the URL and key it shows, and logs the request live', async () => {
    await page.getByRole('button', { name: 'Settings' }).click();
    const toggle = page.getByRole('switch', { name: 'Local server' });
    expect(await toggle.getAttribute('aria-checked')).toBe('false');
    await page.getByLabel('Port', { exact: true }).fill('0');
    await toggle.click();
    await expect.poll(() => toggle.getAttribute('aria-checked')).toBe('true');

    const baseUrl = await page.getByLabel('Base URL', { exact: true }).inputValue();
    const apiKey = await page.getByLabel('API key', { exact: true }).inputValue();
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    await page.getByRole('button', { name: 'Copy key' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(apiKey);

    const client = new OpenAI({ baseURL: baseUrl, apiKey, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 4,
    });
    expect(completion.usage?.completion_tokens).toBe(4);
    const requests = page.getByRole('table', { name: 'Requests' });
    await expect.poll(() => requests.locator('tbody tr').first().textContent()).toMatch(/POST \/v1\/chat\/completions · tiny200\d+ \+ 4/);
    await page.getByRole('region', { name: 'Local server' }).scrollIntoViewIfNeeded();
    await screenshots(page, 'local-server');

    await toggle.click();
    await expect.poll(() => toggle.getAttribute('aria-checked')).toBe('false');
    await expect(fetch(`${baseUrl}/models`)).rejects.toThrow();
    expect(problems).toEqual([]);
  });
});
