import { defineConfig } from 'vitest/config';

// One project per part of the app; each runs in the environment its code runs in.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'shared', include: ['tests/shared/**/*.test.ts'], environment: 'node' } },
      { test: { name: 'engine', include: ['tests/engine/**/*.test.ts'], environment: 'node', testTimeout: 120_000, hookTimeout: 120_000 } },
      { test: { name: 'main', include: ['tests/main/**/*.test.ts'], environment: 'node' } },
      { test: { name: 'preload', include: ['tests/preload/**/*.test.ts'], environment: 'node' } },
      { test: { name: 'cli', include: ['tests/cli/**/*.test.ts'], environment: 'node', testTimeout: 120_000 } },
      { test: { name: 'api', include: ['tests/api/**/*.test.ts'], environment: 'node', testTimeout: 120_000, hookTimeout: 120_000 } },
      { test: { name: 'architecture', include: ['tests/architecture/**/*.test.ts'], environment: 'node', testTimeout: 60_000 } },
      { test: { name: 'renderer', include: ['tests/renderer/**/*.test.tsx'], environment: 'happy-dom' } },
    ],
  },
});
