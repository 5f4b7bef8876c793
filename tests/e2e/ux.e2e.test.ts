import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint } from '../../src/engine/pack/import.js';
import { listPacks } from '../../src/engine/pack/store.js';
import { readTrace } from '../../src/shared/trace-files.js';
import { modelStoreDir } from '../../src/main/paths.js';
import { openStorage } from '../../src/main/storage/index.js';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { readCheckpointWeights } from '../helpers/safetensors.js';
import { makeSyntheticCheckpoint } from '../../src/engine/checkpoint/synthetic.js';
import { BUILT, launchChromium, requireBuild, screenshots } from './harness.js';

/**
 * What a new user meets in the first ten minutes, end to end: the built UI in Chromium through the web
 * bridge, the real engine, a tiny random-weight LLaVA (its answers are gibberish by design). Each test
 * is one promise of the desktop experience: first run, text-only questions, one image per question,
 * layout at 900 px, keyboard, honest progress and errors, compare side by side, the inspector, models,
 * settings and the theme. Screenshots (narrow and wide, light and dark) go to out/screenshots.
 */

let userData: string;
let home: string;
let host: WebHost;
let browser: BrowserContext;
let page: Page;
let imageA: Buffer;
let imageB: Buffer;
let tinyParameters: number;
let sampleQuestion = '';
const problems: string[] = [];
const LONG_URL = `https://example.com/${'averyveryverylongpathsegment'.repeat(12)}`;
const LONG_ANSWER = `${'x'.repeat(700)} and then ${'`code_without_any_spaces_'.repeat(20)}\``;

const png = (width: number, height: number, background: string) =>
  sharp({ create: { width, height, channels: 3, background } })
    .png()
    .toBuffer();

/** Conversations a user already has: one with words longer than any window, one with many turns and an image at the top. */
async function seedConversations(): Promise<void> {
  const storage = openStorage(userData);
  const { conversations, images } = storage;
  const image = (await images.addBytes(imageA)).id;
  const long = await conversations.create('Long words');
  await conversations.addUserMessage(long.id, `Open ${LONG_URL}`);
  await conversations.finishAnswer(await conversations.startAnswer(long.id), { status: 'done', text: LONG_ANSWER });
  const many = await conversations.create('Many turns');
  for (let turn = 0; turn < 10; turn++) {
    await conversations.addUserMessage(many.id, `Question ${turn + 1}?`, turn === 0 ? [image] : []);
    const text = Array.from({ length: 6 }, (_, line) => `Answer ${turn + 1}, line ${line + 1}.`).join('\n');
    await conversations.finishAnswer(await conversations.startAnswer(many.id), { status: 'done', text });
  }
}

beforeAll(async () => {
  requireBuild();
  userData = mkdtempSync(join(tmpdir(), 'tp-e2e-ux-'));
  home = mkdtempSync(join(tmpdir(), 'tp-e2e-home-'));
  // 8 decoder layers, a 56 px image in 7 px patches: an 8×8 grid of 64 visual tokens.
  const checkpoint = await makeSyntheticCheckpoint(join(userData, 'hf-tiny'), { preset: 'tiny', layers: 8, imageSize: 56 });
  tinyParameters = [...readCheckpointWeights(checkpoint.dir).values()].reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  await importCheckpoint(checkpoint.dir, modelStoreDir(userData));
  imageA = await sharp(await png(160, 120, '#2a7'))
    .composite([{ input: await png(60, 50, '#e33'), left: 20, top: 30 }])
    .png()
    .toBuffer();
  imageB = await png(90, 60, '#36c');
  await seedConversations();
  host = await startWebHost({ rendererDir: BUILT.renderer, engineEntry: BUILT.engine, userData, port: 0, engineStdio: 'ignore' });
  browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
  page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(host.url);
  await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await host?.close();
});

/** Drops files on a composer the way a user's drag-and-drop does. */
async function drop(files: { name: string; bytes: Buffer }[], composer: Locator = page.getByTestId('composer')): Promise<void> {
  await composer.evaluate(
    (zone, list) => {
      const data = new DataTransfer();
      for (const { name, base64 } of list) {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        data.items.add(new File([bytes], name, { type: 'image/png' }));
      }
      for (const type of ['dragenter', 'dragover', 'drop'])
        zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
    },
    files.map(({ name, bytes }) => ({ name, base64: bytes.toString('base64') })),
  );
}

// Exact: a kept comparison's "Compared question" region shows as soon as compare mode opens.
const question = () => page.getByLabel('Question', { exact: true });
const lastAnswer = () => page.getByTestId('answer-text').last();
const lastStatus = () => lastAnswer().evaluate((el) => el.closest('li')!.dataset.status);
const settingsFile = () => JSON.parse(readFileSync(join(userData, 'settings.json'), 'utf8'));
const nav = (name: 'Chat' | 'Models' | 'Settings') =>
  page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name, exact: true });
const modeTab = (name: 'Chat' | 'Compare') => page.getByRole('tab', { name });
const pane = (side: 'left' | 'right') => page.getByRole('region', { name: side === 'left' ? 'Left answer' : 'Right answer' });

async function setMaxTokens(count: number): Promise<void> {
  await nav('Settings').click();
  await page.getByLabel('Max new tokens').fill(String(count));
  await expect.poll(() => settingsFile().sampling?.maxTokens).toBe(count);
  await nav('Chat').click();
}

/** Every text an element matching `selector` showed, recorded as the page changes. */
async function recordTexts(selector: string): Promise<() => Promise<string[]>> {
  await page.evaluate((sel) => {
    const seen = new Set<string>();
    (window as unknown as { seen: Set<string> }).seen = seen;
    new MutationObserver(() => document.querySelectorAll(sel).forEach((el) => seen.add(el.textContent ?? ''))).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  }, selector);
  return () => page.evaluate(() => [...(window as unknown as { seen: Set<string> }).seen]);
}

/** Whether anything scrolls sideways: the page itself, or any element of the main area. */
function sidewaysOverflow(): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page ${document.documentElement.scrollWidth}px`);
    for (const el of document.querySelectorAll('main, main *')) {
      const style = getComputedStyle(el);
      const clips = style.overflowX === 'auto' || style.overflowX === 'scroll' || el.tagName === 'MAIN';
      if (clips && el.scrollWidth > el.clientWidth + 1)
        out.push(`${el.tagName.toLowerCase()}[${el.getAttribute('aria-label') ?? el.className}] ${el.scrollWidth}>${el.clientWidth}`);
    }
    return out;
  });
}

async function withinWindow(locator: Locator): Promise<boolean> {
  const box = (await locator.boundingBox())!;
  const { width, height } = page.viewportSize()!;
  return box.x >= 0 && box.y >= 0 && box.x + box.width <= width + 0.5 && box.y + box.height <= height + 0.5;
}

describe('first run', () => {
  it('the empty chat offers three samples; one click asks, and the wait says what the engine is doing', async () => {
    const samples = page.getByRole('region', { name: 'Try a sample' });
    await expect.poll(() => samples.getByRole('listitem').count(), { timeout: 20_000 }).toBe(3);
    for (const item of await samples.getByRole('listitem').all()) {
      expect(await item.getByRole('img').count()).toBe(1);
      expect(await item.getByRole('button', { name: 'Ask' }).count()).toBe(1);
      expect(await item.getByRole('button', { name: 'Compare' }).count()).toBe(1);
    }
    await screenshots(page, 'samples');
    const progress = await recordTexts('[data-testid=answer-progress]');
    const first = samples.getByRole('listitem').first();
    const asked = (await first.getByTestId('sample-question').textContent())!;
    sampleQuestion = asked;
    await first.getByRole('button', { name: 'Ask' }).click();
    await expect.poll(lastStatus, { timeout: 60_000 }).toBe('done');
    expect(await page.getByRole('list', { name: 'Messages' }).getByText(asked, { exact: true }).count()).toBe(1);
    expect(await page.getByRole('img', { name: 'Attached image' }).count()).toBe(1);
    // The model loads on the first question: the user is told, not left with a blinking cursor.
    expect(await progress()).toContain('Loading the model…');
    expect(await page.getByTestId('answer-progress').count()).toBe(0); // gone once the answer is there
    await screenshots(page, 'chat');
  });
});

describe('first run, compare', () => {
  it("a sample's Compare opens compare mode with its image and question, and runs it", async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    const second = page.getByRole('region', { name: 'Try a sample' }).getByRole('listitem').nth(1);
    const asked = (await second.getByTestId('sample-question').textContent())!;
    await second.getByRole('button', { name: 'Compare' }).click();
    expect(await modeTab('Compare').getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('region', { name: 'Compared question' }).textContent()).toContain(asked);
    for (const side of ['left', 'right'] as const)
      await expect.poll(() => pane(side).getAttribute('data-status'), { timeout: 60_000 }).toBe('done');
    await modeTab('Chat').click();
  });
});

describe('chat', () => {
  it('answers a text-only question and lists its conversation at once', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    await question().fill('Say something without a picture.');
    const send = page.getByRole('button', { name: 'Send' });
    expect(await send.isDisabled()).toBe(false);
    await send.click();
    await expect.poll(lastStatus, { timeout: 60_000 }).toBe('done');
    expect(await page.getByRole('img', { name: 'Attached image' }).count()).toBe(0);
    expect(await page.getByLabel('Answer statistics').last().textContent()).toMatch(/visual tokensnone \(text only\)/);
    expect(await page.getByRole('button', { name: 'Say something without a picture.', exact: true }).count()).toBe(1);
    expect(await page.getByRole('alert').count()).toBe(0);
  });

  it('takes one image per question: a second one replaces the first and says so; the turn shows the one used', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    const attached = page.getByRole('list', { name: 'Attached images' }).getByRole('img');
    await drop([{ name: 'a.png', bytes: imageA }]);
    await page.getByRole('img', { name: 'Attached 160×120 PNG' }).waitFor();
    await drop([{ name: 'b.png', bytes: imageB }]);
    await page.getByRole('img', { name: 'Attached 90×60 PNG' }).waitFor();
    expect(await attached.count()).toBe(1);
    expect(await page.getByTestId('composer-note').textContent()).toMatch(/one image per question.*replaced/i);
    await drop([
      { name: 'a.png', bytes: imageA },
      { name: 'b.png', bytes: imageB },
    ]);
    await page.getByRole('img', { name: 'Attached 160×120 PNG' }).waitFor();
    expect(await attached.count()).toBe(1);
    expect(await page.getByTestId('composer-note').textContent()).toMatch(/first of the 2/);
    await question().fill('Which one did you get?');
    await question().press('Enter');
    await expect.poll(lastStatus, { timeout: 60_000 }).toBe('done');
    const turnImages = page.getByRole('list', { name: 'Messages' }).getByRole('img', { name: 'Attached image' });
    expect(await turnImages.count()).toBe(1);
    const [width, height] = await turnImages.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]);
    expect(width / height).toBeCloseTo(160 / 120, 1); // image A's thumbnail, not B's
  });

  it('long words and code wrap inside their bubbles, at 900 px and at 1600 px', async () => {
    for (const size of [
      { width: 900, height: 600 },
      { width: 1600, height: 1000 },
    ]) {
      await page.setViewportSize(size);
      await page.getByRole('button', { name: 'Long words', exact: true }).click();
      await page.getByText(LONG_ANSWER.slice(0, 40)).waitFor();
      expect(await sidewaysOverflow()).toEqual([]);
      expect(await withinWindow(page.getByRole('button', { name: 'Send' }))).toBe(true);
      expect(await withinWindow(page.getByRole('button', { name: 'Export Markdown' }))).toBe(true);
    }
    await screenshots(page, 'long-words');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('opening a conversation shows its newest answer', async () => {
    await page.setViewportSize({ width: 900, height: 600 });
    const messages = page.getByRole('list', { name: 'Messages' });
    const atBottom = () => messages.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 4);
    for (const title of ['Many turns', 'Long words', 'Many turns']) {
      await page.getByRole('button', { name: title, exact: true }).click();
      await page.waitForTimeout(600); // thumbnails arrive after the text and push it down
      expect(await atBottom(), title).toBe(true);
    }
    expect(await withinWindow(page.getByText('Answer 10, line 6.'))).toBe(true);
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('"What the model sees" stays inside the window', async () => {
    for (const size of [
      { width: 900, height: 600 },
      { width: 1600, height: 1000 },
    ]) {
      await page.setViewportSize(size);
      await page.getByRole('button', { name: 'Which one did you get?', exact: true }).click();
      await page.getByText('What the model sees').first().click();
      const note = page.getByRole('note').filter({ hasText: 'Model input' });
      await note.waitFor();
      expect(await withinWindow(note), `${size.width}px`).toBe(true);
      await page.getByText('What the model sees').first().click();
    }
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('Esc stops a streaming answer and keeps its text', async () => {
    await setMaxTokens(4096);
    await page.getByRole('button', { name: 'Which one did you get?', exact: true }).click();
    await question().fill('Describe it at length.');
    await question().press('Enter');
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('streaming');
    await expect.poll(async () => (await lastAnswer().textContent())!.length, { timeout: 30_000 }).toBeGreaterThan(20);
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur()); // Esc works wherever the focus is
    await page.keyboard.press('Escape');
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('interrupted');
    expect((await lastAnswer().textContent())!.length).toBeGreaterThan(20);
  });

  it("an engine crash is explained in the user's words, keeps the text and offers to regenerate", async () => {
    const badge = await recordTexts('[role=status][data-state]');
    await question().fill('And once more, at length.');
    await question().press('Enter');
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('streaming');
    await expect.poll(async () => (await lastAnswer().textContent())!.length, { timeout: 30_000 }).toBeGreaterThan(20);
    process.kill(host.engine.pid!, 'SIGKILL');
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('interrupted');
    const note = page.getByTestId('answer-note').last();
    expect(await note.textContent()).toContain('The engine stopped unexpectedly and was restarted. Your text is kept.');
    await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
    const seen = await badge();
    expect(seen.some((t) => /stopped unexpectedly/.test(t))).toBe(true);
    expect(seen.filter((t) => /SIGKILL|killed by/.test(t))).toEqual([]);
    await note.getByRole('button', { name: 'Regenerate' }).click();
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('streaming');
    await page.keyboard.press('Escape');
    await expect.poll(lastStatus, { timeout: 30_000 }).toBe('interrupted');
    expect(await page.getByRole('group', { name: 'Answer versions' }).last().textContent()).toContain('2 / 2');
  });
});

describe('compare', () => {
  it('both answers stream at the same time; a stop keeps both, marked', async () => {
    await setMaxTokens(4096);
    await modeTab('Compare').click();
    await drop([{ name: 'a.png', bytes: imageA }], page.getByRole('region', { name: 'Compare' }).getByTestId('composer'));
    await page.getByRole('img', { name: 'Attached 160×120 PNG' }).waitFor();
    await page.evaluate(() => {
      const snapshots: { left: number; right: number; busy: boolean }[] = [];
      (window as unknown as { snapshots: typeof snapshots }).snapshots = snapshots;
      const length = (side: string) => document.querySelector(`[data-testid=compare-text-${side}]`)?.textContent?.length ?? 0;
      new MutationObserver(() =>
        snapshots.push({
          left: length('left'),
          right: length('right'),
          busy: [...document.querySelectorAll('[data-pane]')].every((el) => el.getAttribute('aria-busy') === 'true'),
        }),
      ).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await question().fill('Describe the picture.');
    await question().press('Enter');
    await expect
      .poll(
        () =>
          page.evaluate(() =>
            (window as unknown as { snapshots: { left: number; right: number; busy: boolean }[] }).snapshots.some(
              (s) => s.busy && s.left > 20 && s.right > 20,
            ),
          ),
        {
          timeout: 30_000,
        },
      )
      .toBe(true);
    await page.getByRole('button', { name: 'Stop' }).click();
    for (const side of ['left', 'right'] as const) {
      await expect.poll(() => pane(side).getAttribute('data-status'), { timeout: 30_000 }).toBe('interrupted');
      expect(await pane(side).getByText('Stopped before the end.').count()).toBe(1);
      expect((await page.getByTestId(`compare-text-${side}`).textContent())!.length).toBeGreaterThan(20);
    }
  });

  it('shows the question and image above the panes, methods in words, and speed and compute as bars', async () => {
    await setMaxTokens(48);
    await modeTab('Compare').click();
    await drop([{ name: 'a.png', bytes: imageA }], page.getByRole('region', { name: 'Compare' }).getByTestId('composer'));
    await page.getByRole('img', { name: 'Attached 160×120 PNG' }).waitFor();
    await question().fill('What colour is the square?');
    await question().press('Enter');
    for (const side of ['left', 'right'] as const)
      await expect.poll(() => pane(side).getAttribute('data-status'), { timeout: 60_000 }).toBe('done');
    const asked = page.getByRole('region', { name: 'Compared question' });
    expect(await asked.textContent()).toContain('What colour is the square?');
    expect(await asked.getByRole('img', { name: 'What both panes answer about' }).count()).toBe(1);
    const chart = page.getByRole('region', { name: 'Speed and compute' });
    const text = (await chart.textContent())!;
    expect(text).toContain('No pruning');
    expect(text).toContain('TransPrune High');
    expect(text).not.toMatch(/transprune-high|\bnone\b/);
    expect(text).not.toMatch(/0\.\d+× faster/);
    for (const metric of ['first-token', 'prefill', 'compute', 'visual-tokens']) {
      const row = chart.locator(`[data-metric="${metric}"]`);
      const [left, right] = await Promise.all(
        ['left', 'right'].map(async (side) => Number(await row.locator(`[data-side="${side}"]`).getAttribute('data-value'))),
      );
      const verdict = (await row.getByTestId('verdict').textContent())!;
      // The right pane against the left (No pruning), worded the way people say it: never a ratio below 1 "faster".
      const ratio = right / left;
      const expected =
        metric === 'first-token' || metric === 'prefill'
          ? ratio < 0.995
            ? `${(1 / ratio).toFixed(2)}× faster`
            : ratio > 1.005
              ? `${Math.round((ratio - 1) * 100)}% slower`
              : 'about the same'
          : ratio < 0.995
            ? `${Math.round((1 - ratio) * 100)}% fewer`
            : ratio > 1.005
              ? `${Math.round((ratio - 1) * 100)}% more`
              : 'the same';
      expect(verdict, metric).toBe(expected);
    }
    expect(await page.getByLabel('Answer statistics').count()).toBe(2);
    await screenshots(page, 'compare');
  });
});

describe('inspector', () => {
  it('explains itself: the real image with kept and pruned patches, scales, ranks, plain words, the question and answer', async () => {
    await modeTab('Chat').click();
    await page.getByRole('button', { name: sampleQuestion, exact: true }).click(); // a synthetic-task image: a picture worth inspecting
    await page.getByRole('list', { name: 'Messages' }).getByText(sampleQuestion, { exact: true }).waitFor();
    const inspect = page.getByRole('button', { name: 'Inspect pruning' }).first();
    await inspect.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Pruning inspector' });
    await dialog.getByRole('slider').waitFor();
    const toolbar = dialog.getByRole('toolbar', { name: 'Inspector actions' });
    expect((await toolbar.boundingBox())!.y).toBeLessThan((await dialog.getByRole('slider').boundingBox())!.y);
    expect(await dialog.getByRole('img', { name: 'The image as the model sees it' }).getAttribute('src')).toMatch(/^data:image\//);
    const legend = dialog.getByRole('list', { name: 'Patch legend' });
    expect(await legend.textContent()).toMatch(/kept.*pruned/i);
    const heatmaps = dialog.getByRole('img', { name: /heatmap/ });
    expect(await heatmaps.count()).toBeGreaterThan(0);
    expect(await dialog.getByRole('img', { name: /^Colour scale/ }).count()).toBe(await heatmaps.count());
    await dialog.locator('[data-patch="9"]').hover();
    expect(await dialog.getByTestId('patch-card').textContent()).toMatch(/rank \d+ of \d+ \(top \d+%\)/);
    const explained = (await dialog.getByRole('region', { name: 'What you are looking at' }).textContent())!;
    expect(explained).toMatch(/TTV/);
    expect(explained).toMatch(/IGA/);
    const answer = dialog.getByRole('region', { name: 'This answer' });
    expect(await answer.textContent()).toContain(sampleQuestion);
    expect(await answer.textContent()).toContain((await page.getByTestId('answer-text').first().textContent())!.slice(0, 20));
    expect(await dialog.getByText('TransPrune High', { exact: false }).count()).toBeGreaterThan(0);
    await screenshots(page, 'inspector', { width: 1280, height: 1240 });

    const download = page.waitForEvent('download');
    await toolbar.getByRole('button', { name: 'Export trace JSON' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^trace-.*\.json$/);
    expect(readTrace(readFileSync((await file.path())!, 'utf8')).layers).toHaveLength(8);
    expect(await dialog.getByRole('status').filter({ hasText: 'Downloaded' }).textContent()).toContain(file.suggestedFilename());
  });

  it('keeps Tab inside the dialog and gives focus back on close', async () => {
    const dialog = page.getByRole('dialog', { name: 'Pruning inspector' });
    const inDialog = () => page.evaluate(() => Boolean(document.activeElement?.closest('[role=dialog]')));
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      expect(await inDialog(), `Tab ${i + 1}`).toBe(true);
    }
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Shift+Tab');
      expect(await inDialog(), `Shift+Tab ${i + 1}`).toBe(true);
    }
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.count()).toBe(0);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Inspect pruning');
  });
});

describe('models', () => {
  it('cards say what a model is; the chat header shows the model in use; importing ~/… does not switch models', async () => {
    const picker = page.getByRole('combobox', { name: 'Model' });
    const inUse = () => picker.locator('option:checked').textContent();
    await expect.poll(inUse).toContain('hf-tiny');
    await nav('Models').click();
    const tiny = page.getByRole('listitem', { name: 'hf-tiny' });
    const card = (await tiny.textContent())!;
    expect(card).toMatch(/fp32/);
    expect(card).toMatch(/64 visual tokens/);
    expect(card).toMatch(/LLaVA-1\.5: CLIP ViT \(\d+ layers\) \+ Llama \(8 layers/);
    expect(card).toMatch(/\d+(\.\d)? [KM]B on disk/);
    expect(await tiny.getByTestId('parameters').getAttribute('title')).toBe(`${tinyParameters.toLocaleString('en-US')} parameters`);

    const second = await makeSyntheticCheckpoint(join(home, 'ckpts', 'hf-gqa'), { preset: 'tiny-gqa' });
    const savedHome = process.env.HOME;
    process.env.HOME = home; // the host runs in this process: `~` is this home
    try {
      await page.getByLabel('Checkpoint folder or GGUF file', { exact: true }).fill('~/ckpts/hf-gqa');
      await page.getByRole('button', { name: 'Import', exact: true }).click();
      await page.getByRole('button', { name: 'Import as fp32' }).click(); // a tiny model: fp32 is this machine's choice
      await expect.poll(() => page.getByRole('button', { name: 'Use' }).count(), { timeout: 60_000 }).toBe(2);
    } finally {
      process.env.HOME = savedHome;
    }
    expect(second.dir.startsWith(home)).toBe(true);
    // hf-gqa sorts first, yet the model in use stays the one the user had.
    expect(await tiny.textContent()).toContain('(in use)');
    expect(await page.getByRole('status').filter({ hasText: 'hf-gqa is installed' }).textContent()).toMatch(/still use hf-tiny/);
    const tinyId = settingsFile().modelId;
    expect(tinyId).toMatch(/^[0-9a-f]{16}$/);

    await nav('Chat').click();
    // With no conversation open, the header's picker sets the model new chats start with (an open one has its own).
    await page.getByRole('button', { name: 'New chat' }).click();
    await expect.poll(inUse).toContain('hf-tiny');
    await picker.selectOption({ label: (await picker.locator('option', { hasText: 'hf-gqa' }).textContent())! });
    await expect.poll(() => settingsFile().modelId).not.toBe(tinyId);
    await question().fill('Which model answers?');
    await question().press('Enter');
    await expect.poll(lastStatus, { timeout: 60_000 }).toBe('done');
    const conversations = join(userData, 'conversations');
    const answered = readdirSync(conversations)
      .map((name) => JSON.parse(readFileSync(join(conversations, name), 'utf8')))
      .find((c) => c.title === 'Which model answers?');
    expect(answered.messages[1].versions[0].modelId).toBe(settingsFile().modelId);
    expect(answered.settings.modelId).toBe(settingsFile().modelId);
    await page.getByRole('button', { name: 'New chat' }).click();
    await picker.selectOption({ label: (await picker.locator('option', { hasText: 'hf-tiny' }).textContent())! });
    await expect.poll(() => settingsFile().modelId).toBe(tinyId);
  });

  it('Verify says a model is intact, and when; or which weight file is damaged and what to do', async () => {
    await nav('Models').click();
    const tiny = page.getByRole('listitem', { name: 'hf-tiny' });
    await tiny.getByRole('button', { name: 'Verify' }).click();
    await expect
      .poll(() => tiny.getByRole('status').textContent(), { timeout: 30_000 })
      .toMatch(/^Verified at \d{1,2}:\d{2}(\s[AP]M)?: all \d+ weight files \(\d+(\.\d)? [KM]B\) match the hashes recorded at import\.$/);

    const gqa = (await listPacks(modelStoreDir(userData))).find((p) => p.name === 'hf-gqa')!;
    const layer = join(gqa.path, 'layer_01.bin');
    const original = readFileSync(layer);
    writeFileSync(layer, Buffer.alloc(original.length));
    try {
      const row = page.getByRole('listitem', { name: 'hf-gqa' });
      await row.getByRole('button', { name: 'Verify' }).click();
      const damaged = row.getByRole('alert');
      await expect
        .poll(() => damaged.textContent(), { timeout: 30_000 })
        .toMatch(/Damaged \(checked at .+\): 1 of \d+ weight files does not match the hashes recorded at import\./);
      expect(await damaged.textContent()).toContain('layer_01.bin has changed since the import');
      expect(await damaged.textContent()).toContain('remove this model and import its checkpoint folder again');
      expect(await tiny.getByRole('status').count()).toBe(1); // each row keeps its own outcome
      expect(await sidewaysOverflow()).toEqual([]);
      await screenshots(page, 'models-verify');
    } finally {
      writeFileSync(layer, original);
    }
  });
});

describe('settings and layout', () => {
  it('lists only installed models, and number fields say why they refuse a value', async () => {
    await nav('Settings').click();
    const model = page.getByLabel('Model', { exact: true });
    await expect.poll(() => model.locator('option').allTextContents()).toEqual(['hf-gqa', 'hf-tiny']);
    const maxTokens = page.getByLabel('Max new tokens');
    const before = settingsFile().sampling.maxTokens;
    await maxTokens.fill('5000');
    expect(await maxTokens.inputValue()).toBe('5000');
    expect(await maxTokens.getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByTestId('settings-maxTokens-error').textContent()).toMatch(/between 1 and 4096/i);
    await maxTokens.fill('');
    expect(await page.getByTestId('settings-maxTokens-error').textContent()).toMatch(/enter a number/i);
    expect(settingsFile().sampling.maxTokens).toBe(before);
    await maxTokens.fill('64');
    await expect.poll(() => settingsFile().sampling.maxTokens).toBe(64);
    expect(await maxTokens.getAttribute('aria-invalid')).toBe('false');
  });

  it('Settings and Compare fit a 900 px window', async () => {
    await page.setViewportSize({ width: 900, height: 600 });
    await nav('Settings').click();
    expect(await sidewaysOverflow()).toEqual([]);
    await screenshots(page, 'settings');
    await nav('Chat').click();
    await modeTab('Compare').click();
    expect(await sidewaysOverflow()).toEqual([]);
    await modeTab('Chat').click();
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('a theme switch (system, light, dark) applies at once and is remembered', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    const theme = page.getByRole('combobox', { name: 'Theme' });
    expect(await theme.locator('option').allTextContents()).toEqual(['System', 'Light', 'Dark']);
    const background = () => page.evaluate(() => getComputedStyle(document.querySelector('#root > div')!).backgroundColor);
    const light = await background();
    await theme.selectOption('dark');
    await expect.poll(background).not.toBe(light);
    await page.reload();
    await page.getByText('Engine ready · cpu').waitFor({ timeout: 60_000 });
    expect(await theme.inputValue()).toBe('dark');
    expect(await background()).not.toBe(light);
    await theme.selectOption('system');
    await expect.poll(background).toBe(light);
  });

  it('ran without script errors', () => {
    expect(problems).toEqual([]);
  });
});
