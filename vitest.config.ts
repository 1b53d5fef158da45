import { defineConfig } from 'vitest/config';

// Unit + integration tests: need only Node and npm.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
