import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = fileURLToPath(new URL('../src/xueliang/static/console/', import.meta.url));

// The console is served by the platform itself: index.html at / and /app/*, assets at /assets/.
// `npm run dev` proxies the API to a running `xueliang demo` (XUELIANG_URL, default :8000).
const backend = process.env.XUELIANG_URL ?? 'http://127.0.0.1:8000';

// The API explorer (/api/v1/docs) loads Swagger UI from the platform itself, never from a CDN:
// the tokens live on this origin, and an isolated network reaches no CDN. Its files come from
// the npm package swagger-ui-dist, copied next to the console at every build.
const SWAGGER_UI = ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png', 'LICENSE', 'NOTICE'];

function swaggerUi() {
  return {
    name: 'xueliang-swagger-ui',
    closeBundle() {
      const src = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
      const dst = join(out, 'swagger-ui');
      mkdirSync(dst, { recursive: true });
      for (const f of SWAGGER_UI) copyFileSync(join(src, f), join(dst, f));
    },
  };
}

export default defineConfig({
  base: '/',
  plugins: [react(), swaggerUi()],
  build: {
    outDir: out,
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    // Two pages: the console (index.html) and the phone app (mobile.html, served at /m/).
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL('./index.html', import.meta.url)),
        mobile: fileURLToPath(new URL('./mobile.html', import.meta.url)),
      },
    },
  },
  server: {
    proxy: {
      '/api': { target: backend, ws: true, changeOrigin: true },
      '/healthz': backend,
    },
  },
});
