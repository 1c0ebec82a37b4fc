// End-to-end test of the browser app in headless Chromium (run by scripts/e2e.sh, which builds
// everything and sets the environment below). The tests run in order and share one browser
// context, so the Cache API persists between page loads as it would for a returning visitor.
//
//   E2E_DIST      built app (trunk build --release)
//   E2E_BUNDLE    fixture bundle v1;  E2E_BUNDLE2: a different version of it
//   E2E_TRAINER   sentiment-trainer (native reference answers)
//   E2E_SERVER    sentiment-server, or empty: e2e/serve.py serves files and feedback tests skip
//   E2E_OUT       where screenshots, the batch CSV and the server's data dir go
//   WEB_TOOLS     the npm prefix holding playwright-core
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, launchChromium } from './support.mjs';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set (run scripts/e2e.sh)`);
  return v;
};
const DIST = env('E2E_DIST');
const BUNDLE = env('E2E_BUNDLE');
const BUNDLE2 = env('E2E_BUNDLE2');
const TRAINER = env('E2E_TRAINER');
const SERVER = process.env.E2E_SERVER || '';
const OUT = env('E2E_OUT');
const require = createRequire(path.join(env('WEB_TOOLS'), 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

const TOL = 1e-4;
// For quantized (q8_0) bundles. The kernels quantize each activation row to int8, and the x86
// and wasm kernels of candle differ, so scores move by up to ~1e-3 on one of the 13 fixture texts
// (the size of the q8_0-vs-f32 difference itself; an open question, see the note). The
// f32 bundle has no such step and is held to TOL on every text (test "a new manifest ...").
const TOL_QUANTIZED = 5e-3;
// frontend/src/engine.rs BATCH_CHUNK.
const WORKER_BATCH_CHUNK = 4;
const DATA_DIR = path.join(OUT, 'server-data');
const manifest = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

// The fixture texts: every sample of the reference goldens (emoji, mentions and links that the
// cardiffnlp preprocessing rewrites, non-Latin scripts, a text longer than the model's limit).
const golden = JSON.parse(fs.readFileSync(new URL('../fixtures/tiny-roberta-bpe/golden.json', import.meta.url), 'utf8'));
// The empty sample is checked separately: the page does not analyse empty text.
const TEXTS = golden.cases.filter((c) => c.preprocess === 'none').map((c) => c.text).filter((t) => t.trim());
const RAW_EXTRA = ['@acme your app crashed again https://t.co/xyz 😡', 'ok.'];
const ALL_TEXTS = [...TEXTS, ...RAW_EXTRA];
// The kernel the Relaxed SIMD worker must choose here (`wasm_matmul::Kernel::best`): V8
// computes the 8-bit dot with unsigned weights exactly only on CPUs with AVX-VNNI (and without
// AVX-VNNI-INT8, whose signed `vpdpbssd` V8 prefers). Null (not checked) off x86-64;
// E2E_RELAXED_KERNEL overrides it (empty: not checked), e.g. on a CPU with AVX-VNNI-INT8 that
// /proc/cpuinfo does not list.
const cpuFlags = process.arch === 'x64' ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
const RELAXED_KERNEL = process.env.E2E_RELAXED_KERNEL !== undefined ? process.env.E2E_RELAXED_KERNEL || null
  : process.arch !== 'x64' ? null
  : /\bavx_vnni\b/.test(cpuFlags) && !/\bavx_vnni_int8\b/.test(cpuFlags) ? 'relaxed-simd' : 'simd128';

/** Native answers: `sentiment-trainer predict --json`, one object per text (texts with a
 *  newline go as arguments, many texts through stdin). The page runs one text unpadded, so
 *  single analyses compare with `--batch-size 1`; batches compare with the worker's chunk size
 *  (both sort by token count, so the padded batches are the same). */
function nativePredict(bundle, texts, batchSize = 1) {
  const asArgs = texts.some((t) => t.includes('\n'));
  const args = ['predict', '--json', '--batch-size', String(batchSize), '--model', bundle];
  const out = execFileSync(TRAINER, [...args, ...(asArgs ? texts : [])], {
    input: asArgs ? '' : texts.join('\n') + '\n',
    maxBuffer: 64 << 20,
  });
  const rows = out.toString().trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, texts.length, 'native prediction count');
  return rows;
}

let port;
let server = null;
let serverLog = '';

async function startServer(modelDir) {
  const args = SERVER
    ? ['--addr', `127.0.0.1:${port}`, '--static', DIST, '--data-dir', DATA_DIR, '--rate-limit', '0',
       ...(modelDir ? ['--model-dir', modelDir] : [])]
    : [path.join(path.dirname(new URL(import.meta.url).pathname), 'serve.py'), String(port), DIST, modelDir || ''];
  const proc = spawn(SERVER || 'python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => (serverLog += d));
  proc.stderr.on('data', (d) => (serverLog += d));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  proc.exited = exited;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/index.html`);
      if (r.ok) break;
    } catch {}
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  server = proc;
}

async function stopServer() {
  if (!server) return;
  const s = server;
  server = null;
  s.kill('SIGTERM');
  await s.exited;
}

let browser;
let context;
let page;
const requests = [];

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  fs.rmSync(DATA_DIR, { recursive: true, force: true });
  port = await freePort();
  await startServer(BUNDLE);
  browser = await launchChromium(chromium);
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  // Service workers do not exist here, so every bundle fetch by the worker shows up.
  context.on('request', (r) => requests.push(r.url()));
});

after(async () => {
  await browser?.close();
  await stopServer();
});

const url = () => `http://127.0.0.1:${port}/`;
const byTest = (id, on = page) => on.locator(`[data-testid="${id}"]`);
const workerScripts = (on) => on.workers().map((w) => path.basename(new URL(w.url()).pathname));

async function openReady(on = page) {
  await on.goto(url());
  await on.waitForFunction(
    () => {
      const s = document.querySelector('[data-testid="model-status"]')?.textContent;
      return s === 'ready' || s === 'error';
    },
    null,
    { timeout: 90_000 },
  );
  const status = await byTest('model-status', on).textContent();
  if (status !== 'ready') {
    throw new Error(`model failed to load: ${await byTest('model-error', on).textContent()}`);
  }
}

/** Analyses `text` through the UI (of `on`, the shared page by default); returns {label,
 *  scores: {label: number}, request}. */
async function analyse(text, { keyboard = false, on = page } = {}) {
  const prev = await on.evaluate(() => document.querySelector('.result')?.getAttribute('data-request') ?? '');
  await byTest('analyze-input', on).fill(text);
  if (keyboard) {
    await byTest('analyze-input', on).press('Control+Enter');
  } else {
    await byTest('analyze-run', on).click();
  }
  await on.waitForFunction(
    (prev) => {
      const r = document.querySelector('.result');
      return (r && r.getAttribute('data-request') !== prev) || document.querySelector('.result ~ .error, [role=alert]');
    },
    prev,
    { timeout: 30_000 },
  );
  const label = await byTest('result-label', on).textContent();
  const scores = {};
  for (const l of ['negative', 'neutral', 'positive']) {
    scores[l] = Number(await byTest(`score-${l}`, on).textContent());
  }
  return { label, scores, request: await on.locator('.result').getAttribute('data-request') };
}

function assertSameAsNative(web, native, what, tol = TOL) {
  assert.equal(web.label, native.label, `${what}: label`);
  for (const [l, s] of Object.entries(native.scores)) {
    assert.ok(Number.isFinite(web.scores[l]), `${what}: score-${l} missing`);
    assert.ok(Math.abs(web.scores[l] - s) <= tol, `${what}: score-${l} web ${web.scores[l]} vs native ${s}`);
  }
}

function modelRequests(file) {
  return requests.filter((u) => u.includes(`/model/${file}`)).length;
}

test('the page analyses every fixture text as the native predictor does (q8_0 bundle)', async () => {
  const v1 = manifest(BUNDLE).version;
  await openReady();
  // Chromium has Relaxed SIMD, so the page picked that build of the worker (index.html).
  assert.deepEqual(workerScripts(page), ['worker_relaxed_loader.js']);
  if (RELAXED_KERNEL) {
    assert.equal(await byTest('model-kernel').textContent(), RELAXED_KERNEL,
      'the relaxed worker\'s kernel for this CPU (E2E_RELAXED_KERNEL overrides the expectation)');
  }
  assert.equal(await byTest('model-version').textContent(), v1);
  assert.match(await byTest('model-origin').textContent(), /downloaded/);
  const native = nativePredict(BUNDLE, ALL_TEXTS);
  // Every text is checked before failing, so a report shows all differences at once.
  const problems = [];
  for (const [i, text] of ALL_TEXTS.entries()) {
    const web = await analyse(text, { keyboard: i % 2 === 1 });
    try {
      assertSameAsNative(web, native[i], `text ${i} (${text.slice(0, 30).replace(/\s+/g, ' ')}…)`, TOL_QUANTIZED);
    } catch (e) {
      problems.push(e.message);
    }
  }
  const ms = await byTest('result-time').textContent();
  assert.match(ms, /^\d+(\.\d+)? ms$/);
  await byTest('analyze-input').fill('   \n ');
  assert.equal(await byTest('analyze-run').isDisabled(), true, 'blank text cannot be analysed');
  assert.deepEqual(problems, [], `${problems.length} of ${ALL_TEXTS.length} texts differ from native`);
});

test('a browser without Relaxed SIMD gets the simd128 worker, with the same answers', async () => {
  // As in Safari: index.html's probe module does not validate.
  const plain = await context.newPage();
  try {
    await plain.addInitScript(() => { WebAssembly.validate = () => false; });
    await openReady(plain);
    assert.deepEqual(workerScripts(plain), ['worker_loader.js']);
    assert.equal(await byTest('model-kernel', plain).textContent(), 'simd128');
    const native = nativePredict(BUNDLE, ALL_TEXTS);
    const problems = [];
    for (const [i, text] of ALL_TEXTS.entries()) {
      try {
        assertSameAsNative(await analyse(text, { on: plain }), native[i], `simd128 worker, text ${i}`, TOL_QUANTIZED);
      } catch (e) {
        problems.push(e.message);
      }
    }
    assert.deepEqual(problems, [], `${problems.length} of ${ALL_TEXTS.length} texts differ from native`);
  } finally {
    await plain.close();
  }
});

test('a second visit starts from the Cache API without downloading the model', async () => {
  const before = modelRequests('model.gguf');
  await openReady();
  assert.equal(modelRequests('model.gguf'), before, 'model.gguf fetched again');
  assert.match(await byTest('model-origin').textContent(), /browser cache/);
});

test('feedback: a correction is stored exactly once; offline it waits and is delivered later', { skip: !SERVER && 'sentiment-server not built' }, async () => {
  const text = TEXTS[0];
  const web = await analyse(text);
  await byTest('feedback-label-neutral').click();
  await page.locator('.feedback input[type=text]').fill('e2e note');
  await byTest('feedback-send').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="feedback-state"]')?.textContent === 'sent', null, { timeout: 15_000 });
  const outbox = async () => JSON.parse(await page.evaluate(() => localStorage.getItem('sentiment-monitor.feedback-outbox.v1')));
  const id1 = (await outbox()).items.at(-1).submission.id;
  assert.match(id1, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  let recs = storedRecords().filter((r) => r.id === id1);
  assert.equal(recs.length, 1, 'exactly one stored record');
  assert.equal(recs[0].label, 'neutral');
  assert.equal(recs[0].predicted, web.label);
  assert.equal(recs[0].text, text);
  assert.equal(recs[0].note, 'e2e note');
  assert.equal(recs[0].model_version, manifest(BUNDLE).version);
  for (const [l, s] of Object.entries(web.scores)) assert.ok(Math.abs(recs[0].scores[l] - s) < 1e-5);

  // Server down: the record waits on the device…
  await stopServer();
  await analyse(TEXTS[1]);
  await byTest('feedback-label-negative').click();
  await byTest('feedback-send').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="feedback-state"]')?.textContent === 'waiting', null, { timeout: 15_000 });
  const id2 = (await outbox()).items.at(-1).submission.id;
  assert.notEqual(id2, id1);
  assert.equal(storedRecords().filter((r) => r.id === id2).length, 0);
  // …and is delivered, once, when the server is back.
  await startServer(BUNDLE);
  await page.waitForFunction(() => document.querySelector('[data-testid="feedback-state"]')?.textContent === 'sent', null, { timeout: 30_000 });
  recs = storedRecords().filter((r) => r.id === id2);
  assert.equal(recs.length, 1, 'the retried record is stored once');
  assert.equal(recs[0].label, 'negative');
  assert.equal(storedRecords().filter((r) => r.id === id1).length, 1);
});

function storedRecords() {
  const dir = path.join(DATA_DIR, 'segments');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
}

test('with the bundle no longer served the cached model still answers; a new manifest is fetched and announced', async () => {
  const v1 = manifest(BUNDLE).version;
  const v2 = manifest(BUNDLE2).version;
  assert.notEqual(v1, v2);
  await stopServer();
  await startServer(null); // the app only: /model/ answers 404
  const beforeGguf = modelRequests('model.gguf');
  await openReady();
  assert.equal(await byTest('model-version').textContent(), v1);
  assert.match(await byTest('model-notice').textContent(), /Offline/);
  assertSameAsNative(await analyse(TEXTS[2]), nativePredict(BUNDLE, [TEXTS[2]])[0], 'offline analysis', TOL_QUANTIZED);

  await stopServer();
  await startServer(BUNDLE2);
  await openReady();
  assert.equal(await byTest('model-version').textContent(), v2);
  assert.match(await byTest('model-notice').textContent(), new RegExp(`new model version.*${v2}.*was ${v1}`));
  assert.match(await byTest('model-origin').textContent(), /downloaded/);
  assert.equal(modelRequests('model.gguf'), beforeGguf + 1, 'the new weights are fetched once');
  assertSameAsNative(await analyse(TEXTS[3]), nativePredict(BUNDLE2, [TEXTS[3]])[0], 'new version analysis');

  // Every fixture text on the f32 bundle too: no activation quantization, so this isolates the
  // wasm build of the encoder from quantized-kernel differences.
  const native = nativePredict(BUNDLE2, ALL_TEXTS);
  for (const [i, text] of ALL_TEXTS.entries()) {
    assertSameAsNative(await analyse(text), native[i], `f32 text ${i}`);
  }
});

test('batch: a 1,000-line CSV with dates gives the table, the distribution and the trend chart', async () => {
  const rows = [];
  const day0 = Date.UTC(2024, 0, 1);
  for (let i = 0; i < 1000; i++) {
    const base = ALL_TEXTS[i % ALL_TEXTS.length].slice(0, 300).replace(/\s+/g, ' ');
    const text = `${base} (${i})`;
    const date = new Date(day0 + (i % 30) * 86_400_000 + (i % 24) * 3_600_000).toISOString();
    rows.push({ text, date });
  }
  const q = (s) => `"${s.replace(/"/g, '""')}"`;
  const csv = 'id,date,text\n' + rows.map((r, i) => `${i + 1},${r.date},${q(r.text)}`).join('\n') + '\n';
  const csvPath = path.join(OUT, 'batch-1000.csv');
  fs.writeFileSync(csvPath, csv);
  // The page still runs the f32 bundle from the previous test (see there for why f32).
  assert.equal(await byTest('model-version').textContent(), manifest(BUNDLE2).version);
  const native = nativePredict(BUNDLE2, rows.map((r) => r.text), WORKER_BATCH_CHUNK);
  const nativeCounts = { negative: 0, neutral: 0, positive: 0 };
  native.forEach((p) => nativeCounts[p.label]++);

  await byTest('batch-file').setInputFiles(csvPath);
  await page.waitForFunction(() => document.querySelector('[data-testid="batch-text-column"]')?.value === 'text');
  assert.equal(await byTest('batch-date-column').inputValue(), 'date');
  await byTest('batch-run').click();
  await byTest('batch-distribution').waitFor({ timeout: 120_000 });
  await page.screenshot({ path: path.join(OUT, 'batch.png'), fullPage: true });
  assert.match(await byTest('batch-progress').textContent(), /^1000 \/ 1000 done/);
  let total = 0;
  for (const l of Object.keys(nativeCounts)) {
    const n = Number((await byTest(`batch-count-${l}`).textContent()).split(' ')[0]);
    assert.equal(n, nativeCounts[l], `count of ${l}`);
    total += n;
  }
  assert.equal(total, 1000);
  const days = await page.$$eval('[data-testid="batch-chart"] rect[data-day]', (rs) => new Set(rs.map((r) => r.dataset.day)).size);
  assert.equal(days, 30);
  assert.equal(await page.locator('[data-testid="batch-table"] tbody tr').count(), 1000);
  // Every row's label is the native one (rows are in input order by default).
  const labels = await page.$$eval('[data-testid="batch-table"] tbody tr td:nth-child(4)', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(labels, native.map((p) => p.label));

  // Filter and sort.
  const top = Object.entries(nativeCounts).sort((a, b) => b[1] - a[1])[0][0];
  await byTest('batch-filter').selectOption(top);
  assert.equal(await page.locator('[data-testid="batch-table"] tbody tr').count(), nativeCounts[top]);
  await byTest('batch-filter').selectOption('');
  await page.locator('th button.sort', { hasText: 'negative' }).click();
  await page.locator('th button.sort', { hasText: 'negative' }).click(); // descending
  const firstNeg = Number(await page.locator('[data-testid="batch-table"] tbody tr:first-child td:nth-child(5)').textContent());
  const maxNeg = Math.max(...native.map((p) => p.scores.negative));
  assert.ok(Math.abs(firstNeg - maxNeg) < 1e-3, `sorted first ${firstNeg} vs max ${maxNeg}`);

  // Export.
  const [download] = await Promise.all([page.waitForEvent('download'), byTest('batch-export').click()]);
  const exported = fs.readFileSync(await download.path(), 'utf8');
  assert.equal(exported.split('\n')[0], 'index,text,date,label,score_negative,score_neutral,score_positive');
  const lines = exported.trim().split('\n');
  assert.equal(lines.length, 1001);
  // Every exported score matches native (the scores are the last three fields).
  lines.slice(1).forEach((line, i) => {
    const f = line.split(',');
    const [neg, neu, pos] = f.slice(-3).map(Number);
    assert.equal(f[f.length - 4], native[i].label, `row ${i + 1} label`);
    for (const [l, v] of [['negative', neg], ['neutral', neu], ['positive', pos]]) {
      assert.ok(Math.abs(v - native[i].scores[l]) <= TOL, `row ${i + 1} ${l}: ${v} vs ${native[i].scores[l]}`);
    }
  });

  await page.setViewportSize({ width: 390, height: 844 }); // a phone
  await page.screenshot({ path: path.join(OUT, 'batch-phone.png'), fullPage: false });
  await page.setViewportSize({ width: 1100, height: 900 });
});

test('batch: cancel stops a long batch', async () => {
  // ~1,500 characters: still past the 512-token limit, so every chunk is slow enough to cancel.
  const long = TEXTS.reduce((a, b) => (b.length > a.length ? b : a)).slice(0, 1500);
  // 1.5 MB of text. Playwright types it with Chromium's insertText, which costs ~8 s on a
  // 2-vCPU AMD Zen 3 even in a bare textarea and fires an input event per line; the panel
  // reads the text once per burst of events (12-15 s in all; it took 45 s when it re-read and
  // re-parsed on every event). The timeout leaves room for a slower machine.
  const t0 = Date.now();
  await byTest('batch-input').fill(Array.from({ length: 1000 }, (_, i) => `${i} ${long}`).join('\n'), { timeout: 180_000 });
  console.log(`# filling the 1,000 long lines took ${Date.now() - t0} ms`);
  await byTest('batch-run').click();
  await byTest('batch-cancel').click();
  await page.waitForFunction(() => /Cancelled after \d+ of 1000/.test(document.querySelector('[data-testid="batch-progress"]')?.textContent ?? ''), null, { timeout: 60_000 });
  const done = Number((await byTest('batch-progress').textContent()).match(/after (\d+)/)[1]);
  assert.ok(done < 1000, `cancelled after ${done}`);
});
