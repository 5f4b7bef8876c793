// `npm start`: builds and opens the desktop app (electron-vite preview) when the Electron binary
// is installed; otherwise says why it cannot and what works without it.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findElectronBinary } from '../../src/cli/binaries.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const electron = findElectronBinary(ROOT);

if (!electron.path) {
  console.error(
    [
      `TransPrune Studio cannot open: ${electron.reason}.`,
      'Install it where GitHub is reachable with `npx install-electron` (or point ELECTRON_OVERRIDE_DIST_PATH at an unpacked Electron).',
      'Without Electron these still work:',
      '  npm run cli -- --help     the command line (ask, compare, import, eval, bench, doctor)',
      '  npm run build && npm run web     the same UI in your browser, against the same engine',
    ].join('\n'),
  );
  process.exit(1);
}

const mode = process.argv.includes('--dev') ? 'dev' : 'preview';
const child = spawn(join(ROOT, 'node_modules', '.bin', 'electron-vite'), [mode], {
  cwd: ROOT,
  stdio: 'inherit',
  shell: process.platform === 'win32',
});
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
