// The phone app's service worker (scope /m/): the app shell cached so that the app starts
// without a network; the API is never cached (answers depend on who asks, and go stale).
// Reports made offline are kept by the page itself (IndexedDB) and sent when it is back online.
const CACHE = 'xl-mobile-v1';
const SHELL = ['/m/', '/m/manifest.webmanifest', '/m/icon.svg'];

async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL);
  // The page's own scripts and styles: whatever /m/ names (hashed file names change per build).
  const html = await (await fetch('/m/', { cache: 'no-store' })).text();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  await cache.addAll(assets);
}

self.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return;
  if (req.mode === 'navigate') {
    // The page: the network first (a new build), the cached shell when offline.
    event.respondWith(
      fetch(req)
        .then((res) => {
          if (res.ok) {
            const copy = res.clone();
            caches.open(CACHE).then((c) => c.put('/m/', copy));
          }
          return res;
        })
        .catch(() => caches.match('/m/')),
    );
    return;
  }
  if (url.pathname.startsWith('/assets/') || SHELL.includes(url.pathname)) {
    // Hashed assets never change: the cache first, then the network (and keep what came).
    event.respondWith(
      caches.match(req).then((hit) => hit || fetch(req).then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(req, copy));
        }
        return res;
      })),
    );
  }
});
