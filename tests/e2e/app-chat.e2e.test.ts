import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrace } from '../../src/shared/trace-files.js';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { visualTokensAt, type Trace } from '../../src/shared/trace.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { BUILT, launchChromium, requireBuild, screenshots } from './harness.js';

/**
 * The app's features end to end: the built UI in Chromium through the web bridge, the real engine
 * process, and a tiny LLaVA checkpoint made here and imported into the model store. (The README's
 * screenshots come from ux.e2e.test.ts.)
 */

let userData: string;
let host: WebHost;
let browser: BrowserContext;
let page: Page;
let imagePng: Buffer;
const problems: string[] = [];

async function startHost(): Promise<void> {
  host = await startWebHost({ rendererDir: BUILT.renderer, engineEntry: BUILT.engine, userData, port: 0, engineStdio: 'ignore' });
  await page.goto(host.url);
  await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
}

beforeAll(async () => {
  requireBuild();
  userData = mkdtempSync(join(tmpdir(), 'tp-e2e-app-'));
  // 8 decoder layers, a 56 px image in 7 px patches: an 8×8 grid of 64 visual tokens.
  const checkpoint = await makeSyntheticCheckpoint(join(userData, 'hf-tiny'), { preset: 'tiny', layers: 8, imageSize: 56 });
  await importCheckpoint(checkpoint.dir, modelStoreDir(userData));
  imagePng = await sharp({ create: { width: 160, height: 120, channels: 3, background: '#2a7' } })
    .composite([
      {
        input: await sharp({ create: { width: 60, height: 50, channels: 3, background: '#e33' } })
          .png()
          .toBuffer(),
        left: 20,
        top: 30,
      },
    ])
    .png()
    .toBuffer();
  browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
  page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  await startHost();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await host?.close();
});

/** Drops the test image on the composer the way a user's drag-and-drop does. */
async function dropImage(): Promise<void> {
  await page.getByTestId('composer').evaluate((zone, base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'shapes.png', { type: 'image/png' }));
    for (const type of ['dragenter', 'dragover', 'drop'])
      zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
  }, imagePng.toString('base64'));
  await page.getByRole('img', { name: 'Attached 160×120 PNG' }).waitFor();
}

async function ask(question: string): Promise<void> {
  await page.getByLabel('Question', { exact: true }).fill(question);
  await page.getByLabel('Question', { exact: true }).press('Enter');
}

async function setMaxTokens(count: number): Promise<void> {
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByLabel('Max new tokens').fill(String(count));
  await expect.poll(() => JSON.parse(readFileSync(join(userData, 'settings.json'), 'utf8')).sampling.maxTokens).toBe(count);
  await page.getByRole('button', { name: 'Chat', exact: true }).click();
}

const lastAnswer = () => page.getByTestId('answer-text').last();
const lastStatus = () => lastAnswer().evaluate((el) => el.closest('li')!.dataset.status);

function storedTrace(): Trace {
  const dir = join(userData, 'traces');
  const newest = readdirSync(dir)
    .map((name) => join(dir, name))
    .sort((a, b) => statTime(b) - statTime(a))[0];
  return readTrace(readFileSync(newest, 'utf8'));
}
const statTime = (path: string) => statSync(path).mtimeMs;

describe('the app through the web bridge', () => {
  it('drops an image, asks, and the answer streams in with its stats', async () => {
    await dropImage();
    await page.evaluate(() => {
      const seen = new Set<string>();
      (window as unknown as { seenTexts: Set<string> }).seenTexts = seen;
      new MutationObserver(() =>
        document.querySelectorAll('[data-testid=answer-text]').forEach((el) => seen.add(el.textContent ?? '')),
      ).observe(document.body, {
        subtree: true,
        childList: true,
        characterData: true,
      });
    });
    await ask('What shape is in the picture?');
    await expect.poll(lastStatus, { timeout: 60_000 }).toBe('done');
    const seen = await page.evaluate(() => [...(window as unknown as { seenTexts: Set<string> }).seenTexts]);
    expect(seen.length).toBeGreaterThan(2); // several partial texts: it streamed
    expect(await page.getByLabel('Answer statistics').last().textContent()).toMatch(/visual tokens\d+ of 64/);
  });

  it('stops mid-answer and keeps the partial text', async () => {
    await setMaxTokens(4096); // long enough to stop it halfway
    await page.getByRole('button', { name: 'Regenerate' }).last().click();
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('streaming'); // the new version, not the old text
    await expect.poll(async () => (await lastAnswer().textContent())!.length, { timeout: 30_000 }).toBeGreaterThan(20);
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('interrupted');
    expect(await page.getByText('Stopped before the end.').count()).toBe(1);
    expect(await page.getByRole('group', { name: 'Answer versions' }).last().textContent()).toContain('2 / 2');
    const shown = await lastAnswer().textContent();
    await setMaxTokens(48);
    // What was streamed before the stop is what was saved.
    const conversations = readdirSync(join(userData, 'conversations'));
    const saved = JSON.parse(readFileSync(join(userData, 'conversations', conversations[0]), 'utf8'));
    expect(saved.messages[1].versions[1]).toMatchObject({ status: 'interrupted', text: shown });
  });

  it("the inspector slider shows the trace's kept count at every layer; the trace exports and validates", async () => {
    await page.getByRole('button', { name: 'Previous version' }).last().click();
    await page.getByRole('button', { name: 'Inspect pruning' }).last().click();
    const dialog = page.getByRole('dialog', { name: 'Pruning inspector' });
    const slider = dialog.getByRole('slider');
    await slider.waitFor();
    const trace = storedTrace();
    for (const layer of trace.layers) {
      await slider.fill(String(layer.layer - 1));
      expect(await dialog.getByTestId('inspector-kept').textContent()).toBe(String(layer.visualIn));
      expect(await dialog.locator('[data-kept="true"]').count()).toBe(visualTokensAt(trace, layer.layer).length);
    }
    await slider.fill(String(trace.layers.findLast((l) => l.kept)!.layer));
    // The browser preview hands exports to the browser as downloads.
    const jsonDownload = page.waitForEvent('download');
    await dialog.getByRole('button', { name: 'Export trace JSON' }).click();
    const json = await jsonDownload;
    await dialog.getByText(`Downloaded ${json.suggestedFilename()}`, { exact: false }).waitFor();
    const parsed = readTrace(readFileSync((await json.path())!, 'utf8'));
    expect(parsed.layers.map((l) => l.visualIn)).toEqual(trace.layers.map((l) => l.visualIn));
    const pngDownload = page.waitForEvent('download');
    await dialog.getByRole('button', { name: 'Export overlay PNG' }).click();
    const png = await pngDownload;
    expect(png.suggestedFilename()).toMatch(/\.png$/);
    // The 672 px square the model saw, and under it the caption band (layer, kept count, method, legend).
    expect(await sharp((await png.path())!).metadata()).toMatchObject({ format: 'png', width: 672, height: 672 + 56 });
    await dialog.getByRole('button', { name: 'Close inspector' }).click();
  });

  it('compare answers one question with both methods side by side', async () => {
    await page.getByRole('tab', { name: 'Compare' }).click();
    await dropImage();
    await ask('What colour is the square?');
    await expect.poll(() => page.getByRole('region', { name: 'Speed and compute' }).count(), { timeout: 90_000 }).toBe(1);
    const summary = await page.getByRole('region', { name: 'Speed and compute' }).textContent();
    expect(summary).toMatch(/TransPrune High against No pruning/);
    expect(await page.locator('[data-metric="prefill"] [data-testid=verdict]').textContent()).toMatch(
      /^(\d+\.\d\d× faster|\d+% slower|about the same)$/,
    );
    expect(await page.getByLabel('Answer statistics').count()).toBe(2);
    await page.getByRole('tab', { name: 'Chat' }).click();
  });

  it('compare two models: each pane picks its model, and the answers name the model that gave them', async () => {
    const other = await makeSyntheticCheckpoint(join(userData, 'hf-second'), { preset: 'tiny-gqa', layers: 4, imageSize: 56 });
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    await page.getByLabel('Checkpoint folder or GGUF file', { exact: true }).fill(other.dir);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.getByRole('button', { name: /^Import as / }).click();
    await page.getByRole('listitem', { name: 'hf-second' }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Chat', exact: true }).click();
    await page.getByRole('tab', { name: 'Compare' }).click();
    await page.getByLabel('Right pane model').selectOption({ label: 'hf-second' });
    await dropImage();
    await ask('What colour is the square?');
    await expect.poll(() => page.getByRole('region', { name: 'Speed and compute' }).count(), { timeout: 90_000 }).toBe(1);
    expect(await page.getByRole('region', { name: 'Speed and compute' }).textContent()).toContain(
      'hf-second · TransPrune High against hf-tiny · No pruning',
    );
    const [left, right] = ['Left', 'Right'].map((side) => page.getByRole('region', { name: `${side} answer` }));
    expect(await right.getByLabel('Right pane model').inputValue()).not.toBe(await left.getByLabel('Left pane model').inputValue());
    // Each pane's trace is its own model's: 8 layers on the left, 4 on the right (the slider runs 0 to layers - 1).
    for (const [pane, layers] of [
      [left, 8],
      [right, 4],
    ] as const) {
      await pane.getByRole('button', { name: 'Inspect pruning' }).click();
      const dialog = page.getByRole('dialog');
      expect(await dialog.getByRole('slider', { name: 'Layer' }).getAttribute('max')).toBe(String(layers - 1));
      await dialog.getByRole('button', { name: 'Close inspector' }).click();
    }
    await page.getByLabel('Left pane model').scrollIntoViewIfNeeded();
    await screenshots(page, 'compare-models');
    await page.getByRole('tab', { name: 'Chat' }).click();
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    const row = page.getByRole('listitem', { name: 'hf-second' });
    await row.getByRole('button', { name: /Remove .*…/ }).click();
    await row.getByRole('button', { name: /^Remove hf-second$/ }).click();
    await row.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Chat', exact: true }).click();
  });

  it('an engine crash mid-answer keeps the text so far, marked interrupted', async () => {
    await setMaxTokens(4096);
    const answers = await page.getByTestId('answer-text').count();
    await ask('Describe it at length.');
    await expect.poll(() => page.getByTestId('answer-text').count(), { timeout: 30_000 }).toBe(answers + 1);
    await expect.poll(async () => (await lastAnswer().textContent())!.length, { timeout: 30_000 }).toBeGreaterThan(20);
    expect(await lastStatus()).toBe('streaming');
    process.kill(host.engine.pid!, 'SIGKILL');
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('interrupted');
    expect(
      await page.getByText(/Stopped before the end\. The engine stopped unexpectedly and was restarted\. Your text is kept\./).count(),
    ).toBe(1);
    const shown = await lastAnswer().textContent();
    expect(shown!.length).toBeGreaterThan(20);
    await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 }); // the host restarted it
    await setMaxTokens(48);
  });

  it('after a host restart the conversation is intact', async () => {
    const before = await page.getByTestId('answer-text').allTextContents();
    await host.close();
    await startHost();
    await page.getByRole('button', { name: 'What shape is in the picture?', exact: true }).click();
    await expect.poll(() => page.getByTestId('answer-text').allTextContents(), { timeout: 10_000 }).toEqual(before);
    expect(await page.getByRole('img', { name: 'Attached image' }).count()).toBe(1);
  });

  it('imports a checkpoint folder from the Models view with progress, then removes it', async () => {
    const second = await makeSyntheticCheckpoint(join(userData, 'hf-gqa'), { preset: 'tiny-gqa' });
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    await page.getByLabel('Checkpoint folder or GGUF file', { exact: true }).fill(second.dir);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.getByRole('button', { name: /^Import as / }).click(); // the precision this machine is offered first
    await page.getByRole('progressbar', { name: 'Import progress' }).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.getByRole('button', { name: 'Use' }).count(), { timeout: 60_000 }).toBe(2);
    const row = page.getByRole('listitem', { name: 'hf-gqa' });
    await row.getByRole('button', { name: /Remove .*…/ }).click();
    await row.getByRole('button', { name: /^Remove hf-gqa$/ }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Use' }).count(), { timeout: 30_000 }).toBe(1);
  });

  it('imports a GGUF file as a text-only model: its chat takes no image and answers text', async () => {
    const gguf = join(import.meta.dirname, '../fixtures/gguf/tiny-llama-f32.gguf');
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    await page.getByLabel('Checkpoint folder or GGUF file', { exact: true }).fill(gguf);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.getByRole('button', { name: /^Import as fp32/ }).click(); // an F32 file: its own precision first
    const row = page.getByRole('listitem', { name: 'tiny-llama-f32' });
    await row.waitFor({ timeout: 60_000 });
    expect(await row.textContent()).toContain('text only, no images');
    expect(await row.textContent()).toContain(`imported from ${gguf}`);
    expect(await row.getByText('vision', { exact: true }).count()).toBe(0);
    await screenshots(page, 'models-gguf');
    await row.getByRole('button', { name: 'Use' }).click();
    await page.getByRole('button', { name: 'Chat', exact: true }).click();
    await page.getByRole('button', { name: 'New chat' }).click();
    const attach = page.getByRole('button', { name: 'No images: text-only model' });
    await attach.waitFor();
    expect(await attach.isDisabled()).toBe(true);
    await page.getByLabel('Question').fill('What is the capital of France?');
    await page.getByLabel('Question').press('Enter');
    await expect.poll(() => page.getByTestId('answer-text').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    await screenshots(page, 'text-only');
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    await row.getByRole('button', { name: /Remove .*…/ }).click();
    await row.getByRole('button', { name: /^Remove tiny-llama-f32$/ }).click();
    await row.waitFor({ state: 'detached' });
  });

  it('downloading by repo id says clearly that this machine is offline', async () => {
    // This machine cannot reach huggingface.co: either the browser knows it is offline, or the download says so.
    if (await page.evaluate(() => navigator.onLine)) {
      await page.getByLabel('Repository id').fill('llava-hf/llava-1.5-7b-hf');
      await page.getByRole('button', { name: 'Download', exact: true }).click();
      await expect
        .poll(() => page.getByRole('alert').textContent(), { timeout: 30_000 })
        .toMatch(/Cannot reach huggingface\.co: you seem to be offline/);
    } else {
      expect(await page.getByRole('note').textContent()).toContain('You are offline');
    }
    await page.getByRole('button', { name: 'Chat', exact: true }).click();
  });

  it('ran without script errors', () => {
    expect(problems).toEqual([]);
  });
});
