import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { _electron } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findElectronBinary } from '../../src/cli/binaries.mjs';
import { BUILT, ROOT, requireBuild } from './harness.js';

/**
 * The desktop app itself. Needs the Electron binary, which cannot be downloaded without GitHub;
 * without it this test is reported as skipped, with the reason in its name.
 */
const electron = findElectronBinary(ROOT);
const title = 'opens the window and shows the engine ready (Electron, utilityProcess engine)';
if (!electron.path) console.warn(`electron e2e skipped: ${electron.reason}`);

describe('desktop app', () => {
  it.skipIf(!electron.path)(electron.path ? title : `${title} — skipped: ${electron.reason}`, async () => {
    requireBuild();
    const app = await _electron.launch({
      executablePath: electron.path!,
      args: [BUILT.main, `--user-data-dir=${mkdtempSync(join(tmpdir(), 'tp-electron-'))}`],
      cwd: ROOT,
    });
    try {
      const window = await app.firstWindow();
      await expect.poll(() => window.getByRole('status').textContent(), { timeout: 60_000 }).toMatch(/^Engine ready · /);
      // No node in the page, and the bridge is the narrow API only.
      const page = await window.evaluate(() => ({
        require: typeof (globalThis as { require?: unknown }).require,
        process: typeof (globalThis as { process?: unknown }).process,
        api: Object.keys((globalThis as unknown as { api: object }).api).sort(),
      }));
      expect(page).toEqual({ require: 'undefined', process: 'undefined', api: ['engine', 'models', 'on'] });
    } finally {
      await app.close();
    }
  });
});
