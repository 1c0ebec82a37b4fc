// The service worker: one build's app shell cached by content, so that after one visit the
// page opens and classifies without a network. Made per build from this template by
// scripts/trunk-post-build.sh (Trunk's post-build hook), which fills in BUILD (a hash over every
// file of the build) and SHELL (the build's files). A new deploy is a new sw.js, which the
// browser finds on the next online visit.
//
// - install: precache every file of this build in a cache named after it;
// - activate: delete other builds' caches and take control of the open pages;
// - navigations: network first, so an online visit always gets the newest deploy; the cached
//   index.html when the network fails (its response keeps the COOP/COEP headers it was served
//   with, so the page stays cross-origin isolated offline);
// - the build's files whose names carry their content hash: from the cache; its other files
//   (the worker builds, which Trunk names without a hash, and the icons): network first, so
//   that page and worker always come from the same deploy, this build's copy offline;
// - anything else is not touched: the model bundle (the worker caches it itself, by sha256,
//   and may fetch it from another origin, e.g. a Hub repo redirecting to its CDN), the
//   feedback API.
const BUILD = "__BUILD__";
const SHELL = ["__SHELL__"];
const PREFIX = "sentiment-monitor-shell-";
const CACHE = PREFIX + BUILD;
// Trunk's content-hashed names: `frontend-<hash>.js`, `frontend-<hash>_bg.wasm`, `style-<hash>.css`.
const HASHED = /-[0-9a-f]{15,}(_bg)?\.(js|wasm|css)$/;
// Servers add `Vary: Origin` (CORS), and the page's module requests carry an Origin header that
// the precache's did not: matched by URL alone, this cache holds exactly one build's files.
const MATCH = { cacheName: CACHE, ignoreVary: true };

const scope = new URL(self.registration.scope);
const shellUrls = new Set(SHELL.map((file) => new URL(file, scope).href));
const indexUrl = new URL("index.html", scope).href;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // `reload`: from the server, not the HTTP cache, so the cache holds exactly this build.
    await cache.addAll(SHELL.map((file) => new Request(new URL(file, scope), { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(async () => {
      const cached = await caches.match(indexUrl, MATCH);
      return cached || Response.error();
    }));
  } else if (shellUrls.has(request.url)) {
    const cached = () => caches.match(request, MATCH);
    if (HASHED.test(new URL(request.url).pathname)) {
      event.respondWith(cached().then((hit) => hit || fetch(request)));
    } else {
      event.respondWith(fetch(request).catch(() => cached().then((hit) => hit || Response.error())));
    }
  }
});
