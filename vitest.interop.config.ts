import { defineConfig } from 'vitest/config';

// Interop tests: need Debian packages (libxen-dev + gcc, later xenstore-utils, VNC clients,
// Chromium, edid-decode). .ci/run installs them; a missing tool is a failure, never a skip.
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
