// What the browser scripts share: a free loopback port and Debian's Chromium, launched with the
// flags this machine needs (no sandbox as root, no GPU, no background connections).
import net from 'node:net';

export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// CHROMIUM_ARGS adds flags, space-separated: e.g. `--js-flags=--perf-basic-prof` so that `perf`
// can name the worker's wasm functions (docs/benchmarks.md, "Relaxed SIMD, Intel machine").
const CHROMIUM_OPTIONS = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    ...(process.env.CHROMIUM_ARGS || '').split(' ').filter(Boolean)],
};

export function launchChromium(chromium) {
  return chromium.launch(CHROMIUM_OPTIONS);
}

/** A browser with a profile on disk (`dir`), as a user's is: unlike the contexts of
 *  `launchChromium`, which are like private windows, it keeps V8's code cache. */
export function launchPersistentChromium(chromium, dir) {
  return chromium.launchPersistentContext(dir, CHROMIUM_OPTIONS);
}
