import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

const out = fileURLToPath(new URL('../src/xueliang/static/console/', import.meta.url));

// The console is served by the platform itself: index.html at / and /app/*, assets at /assets/.
// `npm run dev` proxies the API to a running `xueliang demo` (XUELIANG_URL, default :8000).
const backend = process.env.XUELIANG_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: out,
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: {
      '/api': { target: backend, ws: true, changeOrigin: true },
      '/healthz': backend,
    },
  },
});
