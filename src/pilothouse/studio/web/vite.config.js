// The Studio's build: `npm ci && npm run build` writes ../static/ (committed, so that
// installing Pilothouse needs no Node); stamp.mjs then records the hash of the sources
// the build came from (tests/studio/test_build.py checks it matches the sources).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/studio/',
  build: {
    outDir: '../static',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
});
