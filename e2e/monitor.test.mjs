// The monitor view (#monitor) in headless Chromium over a simulated history
// (fixtures/monitor-history, made by scripts/make-monitor-fixture.py from the loop's simulation:
// six nights with a promotion, and a seventh in which the promotion guard rolls it back).
// sentiment-server serves the page, the fixture's model store (registry.json, reports/) at
// /model/ and its feedback, which this test writes into the server's segment files. Every figure
// the view shows is checked against those files, computed here independently.
//
//   E2E_DIST, E2E_SERVER, E2E_OUT, WEB_TOOLS: as for app.test.mjs (run by scripts/e2e.sh)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, launchChromium } from './support.mjs';
import { STORE, expandFeedback, writeDataDir } from './monitor-fixture.mjs';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set (run scripts/e2e.sh)`);
  return v;
};
const DIST = env('E2E_DIST');
const SERVER = process.env.E2E_SERVER || '';
const OUT = env('E2E_OUT');
const require = createRequire(path.join(env('WEB_TOOLS'), 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

const DATA_DIR = path.join(OUT, 'monitor-data');
const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const registry = readJson(path.join(STORE, 'registry.json'));
const index = readJson(path.join(STORE, 'reports', 'index.json'));
const report = (entry) => readJson(path.join(STORE, entry.file));
const LABELS = ['negative', 'neutral', 'positive'];
const Z95 = 1.959963984540054;
const TOL = 1e-9;

function wilson(agree, n) {
  const p = agree / n;
  const z2 = Z95 * Z95;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (Z95 * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

function psi(p, q) {
  const labels = new Set([...Object.keys(p), ...Object.keys(q)]);
  let s = 0;
  for (const l of labels) {
    const a = Math.max(p[l] ?? 0, 1e-4);
    const b = Math.max(q[l] ?? 0, 1e-4);
    s += (a - b) * Math.log(a / b);
  }
  return s;
}

const records = expandFeedback();
let port;
let server = null;
let serverLog = '';
let browser;
let page;

before(async () => {
  if (!SERVER) return;
  writeDataDir(DATA_DIR, records);
  port = await freePort();
  server = spawn(SERVER, ['--addr', `127.0.0.1:${port}`, '--static', DIST, '--data-dir', DATA_DIR,
    '--model-dir', STORE, '--rate-limit', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/index.html`)).ok) break;
    } catch {}
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await launchChromium(chromium);
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`http://127.0.0.1:${port}/#monitor`);
  await page.locator('[data-testid="agreement-row"]').first().waitFor({ timeout: 60_000 });
  await page.locator('[data-testid="report"]').first().waitFor({ timeout: 60_000 });
});

after(async () => {
  await browser?.close();
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => server.on('exit', r));
  }
});

const skip = SERVER ? false : 'sentiment-server did not build: the monitor needs its /api/feedback/stats';
const attrs = (selector, names) => page.locator(selector).evaluateAll(
  (els, names) => els.map((e) => Object.fromEntries(names.map((n) => [n, e.getAttribute(`data-${n}`)]))), names);

test('the fixture history has a promotion and a rollback (else the view is not tested on them)', { skip }, () => {
  const kinds = registry.history.map((c) => c.kind);
  assert.ok(kinds.includes('promoted') && kinds.includes('rollback'), `history kinds: ${kinds}`);
  assert.equal(index[0].outcome, 'rolled_back');
});

test('agreement per version and per day are those of the feedback records, with the Wilson band', { skip }, async () => {
  const byVersion = new Map();
  const byVersionDay = new Map();
  for (const r of records) {
    const ok = r.label === r.predicted ? 1 : 0;
    const v = byVersion.get(r.model_version) ?? { n: 0, agree: 0 };
    v.n++; v.agree += ok;
    byVersion.set(r.model_version, v);
    const key = `${r.model_version}|${r.received_at.slice(0, 10)}`;
    const d = byVersionDay.get(key) ?? { n: 0, agree: 0 };
    d.n++; d.agree += ok;
    byVersionDay.set(key, d);
  }
  const rows = await attrs('[data-testid="agreement-row"]', ['version', 'n', 'agree', 'agreement', 'ci-low', 'ci-high']);
  assert.deepEqual(rows.map((r) => r.version).sort(), [...byVersion.keys()].sort());
  for (const row of rows) {
    const want = byVersion.get(row.version);
    const [lo, hi] = wilson(want.agree, want.n);
    assert.equal(Number(row.n), want.n, `${row.version}: n`);
    assert.equal(Number(row.agree), want.agree, `${row.version}: agreeing records`);
    assert.ok(Math.abs(Number(row.agreement) - want.agree / want.n) < TOL, `${row.version}: agreement`);
    assert.ok(Math.abs(Number(row['ci-low']) - lo) < TOL && Math.abs(Number(row['ci-high']) - hi) < TOL,
      `${row.version}: band ${row['ci-low']}-${row['ci-high']} vs ${lo}-${hi}`);
  }
  const points = await attrs('[data-testid="agreement-point"]', ['version', 'day', 'n', 'agree', 'ci-low', 'ci-high']);
  assert.equal(points.length, byVersionDay.size, 'one point per version and day');
  for (const p of points) {
    const want = byVersionDay.get(`${p.version}|${p.day}`);
    assert.ok(want, `a point for ${p.version} on ${p.day}, which has no feedback`);
    assert.deepEqual([Number(p.n), Number(p.agree)], [want.n, want.agree], `${p.version} on ${p.day}`);
    const [lo, hi] = wilson(want.agree, want.n);
    assert.ok(Math.abs(Number(p['ci-low']) - lo) < TOL && Math.abs(Number(p['ci-high']) - hi) < TOL);
  }
  // The baseline and threshold drawn: the champion's, as the monitor used it.
  const champion = registry.champion;
  const monitors = index.slice(0, 5).map(report).map((r) => r.monitor).filter(Boolean);
  const entry = registry.versions.find((v) => v.version === champion);
  const baseline = entry.metrics?.agreement_baseline
    ?? (monitors.find((m) => m.model_version === champion) ?? monitors[0]).baseline;
  const tolerance = monitors[0].tolerance;
  assert.ok(Math.abs(Number(await page.locator('[data-testid="baseline-line"]').getAttribute('data-value')) - baseline) < TOL);
  assert.ok(Math.abs(Number(await page.locator('[data-testid="threshold-line"]').getAttribute('data-value')) - (baseline - tolerance)) < TOL);
});

test('feedback volume per day and label, and the label mix against the training mix', { skip }, async () => {
  const want = new Map();
  for (const r of records) {
    const key = `${r.received_at.slice(0, 10)}|${r.label}`;
    want.set(key, (want.get(key) ?? 0) + 1);
  }
  const bars = await attrs('[data-testid="volume-bar"]', ['day', 'label', 'count']);
  for (const b of bars) assert.equal(Number(b.count), want.get(`${b.day}|${b.label}`) ?? 0, `${b.day} ${b.label}`);
  assert.equal(bars.reduce((s, b) => s + Number(b.count), 0), records.length);

  const champion = registry.champion;
  const mine = records.filter((r) => r.model_version === champion);
  const mix = Object.fromEntries(LABELS.map((l) => [l, mine.filter((r) => r.label === l).length / mine.length]));
  const rows = await attrs('[data-testid="mix-row"]', ['label', 'feedback', 'training']);
  for (const row of rows) assert.ok(Math.abs(Number(row.feedback) - mix[row.label]) < TOL, `mix of ${row.label}`);
  const entry = registry.versions.find((v) => v.version === champion);
  const reference = entry.metrics?.label_mix
    ?? index.slice(0, 5).map(report).map((r) => r.monitor).find((m) => m?.model_version === champion)?.reference_mix;
  const shown = await page.locator('[data-testid="mix-drift"]').getAttribute('data-psi');
  if (reference) {
    assert.ok(Math.abs(Number(shown) - psi(mix, reference)) < 1e-9, `PSI ${shown}`);
  } else {
    assert.equal(shown, null, 'no training mix recorded: no PSI');
  }
});

test('the registry: every version, the champion, and every champion change with its reason', { skip }, async () => {
  const versions = await attrs('[data-testid="registry-version"]', ['version', 'champion', 'baseline']);
  assert.deepEqual(versions.map((v) => v.version), registry.versions.map((v) => v.version).reverse());
  assert.deepEqual(versions.filter((v) => v.champion === 'true').map((v) => v.version), [registry.champion]);
  const changes = await attrs('[data-testid="champion-change"]', ['kind', 'from', 'to', 'at']);
  const want = [...registry.history].reverse();
  assert.deepEqual(changes, want.map((c) => ({ kind: c.kind, from: c.from ?? '', to: c.to, at: c.at })));
  const reasons = await page.locator('[data-testid="champion-change"] .reason').allTextContents();
  assert.deepEqual(reasons, want.map((c) => c.reason));
});

test("the latest reports, and the gate's and the guard's figures side by side", { skip }, async () => {
  const shown = await attrs('[data-testid="report"]', ['file', 'outcome']);
  assert.deepEqual(shown, index.slice(0, 5).map((e) => ({ file: e.file, outcome: e.outcome })));
  // The newest report (the rollback): the promotion guard's figures for champion and parent.
  const last = report(index[0]);
  const first = page.locator('[data-testid="report"]').first();
  assert.equal(await first.locator('[data-testid="guard"]').getAttribute('data-decision'), last.promotion_guard.decision);
  for (const [who, testid] of [['champion_agreement', 'guard-champion'], ['parent_agreement', 'guard-parent']]) {
    const a = last.promotion_guard[who];
    const row = first.locator(`[data-testid="${testid}"]`);
    assert.equal(Number(await row.getAttribute('data-n')), a.n);
    for (const f of ['agreement', 'ci_low', 'ci_high']) {
      // serde_json reads floats to within an ulp, not always to the same bits.
      const shown = Number(await row.getAttribute(`data-${f.replace('_', '-')}`));
      assert.ok(Math.abs(shown - a[f]) < 1e-12, `${testid} ${f}: ${shown} vs ${a[f]}`);
    }
  }
  // The monitor's figures of every report shown, with its label-mix drift alert (issue 33.4).
  for (const e of index.slice(0, 5)) {
    const m = report(e).monitor;
    const line = page.locator(`[data-testid="report"][data-file="${e.file}"] [data-testid="report-monitor"]`);
    if (!m || !m.n) {
      assert.equal(await line.count(), 0, `${e.file}: no monitor figures`);
      continue;
    }
    assert.equal(Number(await line.getAttribute('data-n')), m.n, `${e.file}: n`);
    assert.equal(await line.getAttribute('data-psi-alert'), String(m.psi_alert), `${e.file}: PSI alert`);
    const psi = await line.getAttribute('data-psi');
    if (m.psi === null) assert.equal(psi, null);
    else assert.ok(Math.abs(Number(psi) - m.psi) < 1e-12, `${e.file}: PSI ${psi} vs ${m.psi}`);
  }
  assert.ok(index.slice(0, 5).some((e) => report(e).monitor?.psi_alert), 'the fixture has a PSI alert to show');
  // The newest report that reached the gate: champion and challenger on the gate's metrics.
  const gated = index.slice(0, 5).find((e) => report(e).evaluations);
  assert.ok(gated, 'a report with a gate among the newest five');
  const r = report(gated);
  const box = page.locator(`[data-testid="report"][data-file="${gated.file}"]`);
  assert.equal(await box.locator('[data-testid="gate"]').getAttribute('data-promote'), String(r.gate.promote));
  const rows = await box.locator('[data-testid="gate-row"]').evaluateAll((els) => els.map((e) => ({
    set: e.dataset.set, metric: e.dataset.metric, champion: Number(e.dataset.champion), challenger: Number(e.dataset.challenger),
  })));
  const g = r.config.gate;
  const want = [
    { set: 'holdout', metric: g.holdout_metric, champion: r.evaluations.champion_holdout[g.holdout_metric],
      challenger: r.evaluations.challenger_holdout[g.holdout_metric] },
    { set: 'gold', metric: g.gold_metric, champion: r.evaluations.champion_gold[g.gold_metric],
      challenger: r.evaluations.challenger_gold[g.gold_metric] },
  ];
  assert.deepEqual(rows.map((x) => [x.set, x.metric]), want.map((x) => [x.set, x.metric]));
  rows.forEach((x, k) => {
    for (const who of ['champion', 'challenger']) {
      assert.ok(Math.abs(x[who] - want[k][who]) < 1e-12, `${x.set} ${who}: ${x[who]} vs ${want[k][who]}`);
    }
  });
  await page.screenshot({ path: path.join(OUT, 'monitor.png'), fullPage: true });
});

test('the monitor loads no model: the model worker starts when the user goes to the page', { skip }, async () => {
  const other = await browser.newPage();
  const fetched = [];
  other.on('request', (r) => fetched.push(new URL(r.url()).pathname));
  await other.goto(`http://127.0.0.1:${port}/#monitor`);
  await other.locator('[data-testid="agreement-row"]').first().waitFor({ timeout: 60_000 });
  await other.waitForTimeout(1_000); // (index.html would have started its worker long before)
  assert.deepEqual(other.workers().map((w) => w.url()), []);
  assert.deepEqual(fetched.filter((p) => /worker|manifest\.json$|\.gguf$/.test(p)), []);
  const started = other.waitForEvent('worker', { timeout: 30_000 });
  await other.locator('[data-testid="nav-page"]').click();
  assert.match((await started).url(), /\/worker(_relaxed)?(_loader)?\.js$/);
  await other.close();
});

test('the monitor says which URL failed, or that there is no model store, and how to point it elsewhere', { skip }, async () => {
  const other = await browser.newPage();
  // Nothing listens on port 9 (discard) here; the store is a folder that does not exist.
  await other.goto(`http://127.0.0.1:${port}/?api=http://127.0.0.1:9&model=/model/nowhere/#monitor`);
  const agreement = other.locator('[data-testid="agreement-state"][data-state="error"]');
  await agreement.waitFor({ timeout: 30_000 });
  assert.match(await agreement.textContent(), /127\.0\.0\.1:9\/api\/feedback\/stats.*\?api=/s);
  // A model location without registry.json (a single bundle, as scripts/run.sh serves) is said
  // calmly, not as an error.
  const reg = other.locator('[data-testid="registry-state"][data-state="absent"]');
  await reg.waitFor({ timeout: 30_000 });
  assert.match(await reg.textContent(), /nowhere\/registry\.json.*single bundle.*\?model=/s);
  // Back to the page and to the monitor, with the header's links.
  await other.locator('[data-testid="nav-page"]').click();
  assert.equal(await other.locator('[data-testid="monitor"]').count(), 0);
  await other.close();
});
