import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // Each file in its own process: native state and env switches stay apart.
    pool: 'forks',
  },
});
