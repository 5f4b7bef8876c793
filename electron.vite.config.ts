import tailwindcss from '@tailwindcss/vite';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'electron-vite';
import { resolve } from 'node:path';

/**
 * `npm run build` emits:
 *   out/main/index.cjs     Electron main
 *   out/main/engine.cjs    the engine process entry (utilityProcess.fork), same bundle settings as main
 *   out/preload/index.cjs  the sandboxed preload: one self-contained CommonJS file
 *   out/renderer/          the UI (also what `npm run web` serves)
 * Main and engine are CommonJS: an ESM utility entry inside app.asar fails to load in packaged builds.
 */
export default defineConfig({
  main: {
    build: {
      rolldownOptions: {
        input: { index: resolve('src/main/index.ts'), engine: resolve('src/engine/worker/entry.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs' },
      },
    },
  },
  preload: {
    build: {
      // A sandboxed preload can require only 'electron': bundle zod and the contract into it.
      externalizeDeps: false,
      isolatedEntries: true,
      rolldownOptions: {
        input: { index: resolve('src/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'src/renderer',
    build: { rolldownOptions: { input: { index: resolve('src/renderer/index.html') } } },
    plugins: [react(), tailwindcss()],
  },
});
