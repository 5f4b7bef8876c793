import { defineConfig } from 'vitest/config';

// Browser and Electron end-to-end tests. They use the build output, so `npm test` runs them after `npm run build`.
export default defineConfig({
  test: {
    name: 'e2e',
    include: ['tests/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
