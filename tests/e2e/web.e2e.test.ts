import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebHost, type WebHost } from '../../src/web/server.js';
import { BUILT, launchChromium, requireBuild, ROOT } from './harness.js';

/**
 * The built UI in Chromium through the web bridge, against the real (built) engine process:
 * the page loads, shows the engine ready with its provider, and survives the engine being killed.
 */

let host: WebHost;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  requireBuild();
  host = await startWebHost({
    rendererDir: BUILT.renderer,
    engineEntry: BUILT.engine,
    userData: mkdtempSync(join(tmpdir(), 'tp-e2e-')),
    port: 0,
    engineStdio: 'ignore',
  });
  browser = await launchChromium();
  page = await browser.newPage();
  // CSP violations and script errors show up here; the UI must load without any.
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await host?.close();
});

const status = () => page.getByRole('status');

describe('web UI against the real engine', () => {
  it('loads and shows the engine ready on the CPU provider', async () => {
    await page.goto(host.url);
    await expect.poll(() => status().textContent(), { timeout: 60_000 }).toBe('Engine ready · cpu');
    expect(await page.title()).toBe('TransPrune Studio');
    // The empty model store is the reason nothing can be sent once the engine is up.
    await expect.poll(() => page.getByText(/No model installed/).count(), { timeout: 10_000 }).toBe(1);
    expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
  });

  it('shows crashed, then ready again, when the engine process is killed', async () => {
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seenStates: string[] }).seenStates = seen;
      const badge = document.querySelector('[role=status]')!;
      new MutationObserver(() => seen.push(badge.textContent ?? '')).observe(badge, {
        subtree: true,
        characterData: true,
        childList: true,
        attributes: true,
      });
    });
    const pid = host.engine.pid!;
    process.kill(pid, 'SIGKILL');
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates.at(-1)), { timeout: 60_000 })
      .toBe('Engine ready · cpu');
    const seen = await page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates);
    // In the user's words; the signal is a detail for Settings, not the status line.
    const crashed = 'Engine stopped unexpectedly · restarting';
    expect(seen).toContain(crashed);
    expect(seen.indexOf(crashed)).toBeLessThan(seen.lastIndexOf('Engine ready · cpu'));
    expect(seen.filter((text) => /SIGKILL|killed by/.test(text))).toEqual([]);
    expect(host.engine.pid).not.toBe(pid);
  });

  it('lists the providers in settings, including why the others do not load', async () => {
    await page.getByRole('button', { name: 'Settings' }).click();
    await expect.poll(() => page.getByText('cpu (active)').count()).toBe(1);
    expect(await page.getByText('restarts 1').count()).toBe(1);
    // The technical reason of the last crash is kept where people look for details.
    expect(await page.getByText('Last restart: killed by SIGKILL').count()).toBe(1);
  });

  it('`npm run web` on a busy port says why in one line, without a stack trace', () => {
    const port = new URL(host.url).port; // this host holds it
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/web/serve.ts', '--port', port, '--user-data', mkdtempSync(join(tmpdir(), 'tp-busy-'))],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([
      `error: port ${port} is already in use (another preview running?): pass --port <n>, or --port 0 for any free port`,
    ]);
  });

  it('ran without script errors or CSP violations', () => {
    expect(problems).toEqual([]);
  });
});
