import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { CATALOGUE } from '../../src/shared/catalogue.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { startStandInHub, type StandInHub } from '../helpers/stand-in-hub.js';
import { BUILT, launchChromium, requireBuild, screenshots } from './harness.js';

/**
 * The model catalogue end to end: the built UI in Chromium, the real engine, and a stand-in Hugging Face
 * (HF_ENDPOINT) that serves the catalogue's GGUF pair (tiny fixture bytes under the real file names) with the
 * connection cut halfway through the language file, and a checkpoint whose weights do not match their listed hash.
 */

const GGUF_ENTRY = CATALOGUE.find((e) => e.format === 'gguf')!;
const FIXTURE_PAIR = join(import.meta.dirname, '../fixtures/gguf/tiny-llava');

let userData: string;
let hub: StandInHub;
let host: WebHost;
let browser: BrowserContext;
let page: Page;
let pairBytes: number;
const problems: string[] = [];

beforeAll(async () => {
  requireBuild();
  userData = mkdtempSync(join(tmpdir(), 'tp-e2e-catalogue-'));
  const [model, mmproj] = ['tiny-llava-f32.gguf', 'mmproj-tiny-llava-f32.gguf'].map((f) => readFileSync(join(FIXTURE_PAIR, f)));
  pairBytes = model.length + mmproj.length;
  const broken = await makeSyntheticCheckpoint(join(userData, 'hf-broken'), { preset: 'tiny' });
  const brokenFiles = readdirSync(broken.dir, { withFileTypes: true }).filter((f) => f.isFile());
  hub = await startStandInHub(
    {
      [GGUF_ENTRY.repoId]: { [GGUF_ENTRY.files![0]]: model, [GGUF_ENTRY.files![1]]: mmproj },
      'org/broken': Object.fromEntries(brokenFiles.map((f) => [f.name, readFileSync(join(broken.dir, f.name))])),
    },
    { cutAfter: { [GGUF_ENTRY.files![0]]: model.length >> 1 }, corrupt: ['model.safetensors'] },
  );
  process.env.HF_ENDPOINT = hub.url;
  host = await startWebHost({ rendererDir: BUILT.renderer, engineEntry: BUILT.engine, userData, port: 0, engineStdio: 'ignore' });
  browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
  page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(host.url);
  await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
}, 240_000);

afterAll(async () => {
  delete process.env.HF_ENDPOINT;
  await browser?.close();
  await host?.close();
  await hub?.close();
  expect(problems).toEqual([]);
});

describe('the model catalogue', () => {
  it("lists every entry with its size, licence and whether it fits; the hub's listing gives the exact download", async () => {
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    const cards = page.getByRole('list', { name: 'Model catalogue' }).getByRole('listitem');
    await expect.poll(() => cards.count(), { timeout: 20_000 }).toBe(CATALOGUE.length);
    const gguf = page.getByRole('listitem', { name: GGUF_ENTRY.name });
    expect(await gguf.getByTestId('download-size').textContent()).toBe(`Download ${(pairBytes / 1e6).toFixed(1)} MB in 2 files`);
    const llava = page.getByRole('listitem', { name: 'LLaVA-1.5 7B', exact: true });
    expect(await llava.getByTestId('download-size').textContent()).toBe('Download about 14.1 GB (estimated: the hub did not answer)');
    expect(await llava.textContent()).toContain('Llama 2 Community License');
    expect(await llava.textContent()).toMatch(/(Fits in your memory|Too large for this computer)/);
    await page.getByRole('heading', { name: 'Download from Hugging Face' }).scrollIntoViewIfNeeded();
    await screenshots(page, 'catalogue');
  });

  it('downloads the GGUF pair through a cut connection (resumed with a Range request) and installs it', async () => {
    await page.getByRole('button', { name: `Download ${GGUF_ENTRY.name}` }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /is installed/ })
      .waitFor({ timeout: 120_000 });
    const gets = hub.requests.filter((r) => r.path.endsWith(GGUF_ENTRY.files![0]));
    expect(gets.map((r) => r.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
    const installed = page.getByRole('region', { name: 'Installed models' });
    expect(await installed.getByRole('button', { name: 'Use' }).count()).toBe(1);
    expect(await installed.textContent()).toContain('visual tokens');
    await screenshots(page, 'catalogue-installed');
  });

  it('a download whose bytes do not match the hub checksum is refused with a clear message', async () => {
    await page.getByLabel('Repository id').fill('org/broken');
    await page.getByRole('button', { name: 'Download', exact: true }).click();
    await expect
      .poll(() => page.getByRole('alert').textContent(), { timeout: 30_000 })
      .toContain("model.safetensors did not match the hub's checksum");
  });
});
