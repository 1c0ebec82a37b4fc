// The README's screenshots, taken in headless Chromium with a real model (run by
// scripts/screenshots.sh, which builds what is needed and sets the environment below):
//   docs/screenshot.png          the page: a post analysed and explained, a batch with its review
//   docs/screenshot-explain.png  an explained post
//   docs/screenshot-review.png   the review queue with a few rows reviewed and one explained
//   docs/screenshot-dark.png     the dark theme
//   docs/screenshot-monitor.png  the monitor view (#monitor) over the simulated history of
//                                fixtures/monitor-history (a promotion, then a rollback)
//
//   SHOT_DIST    built app;  SHOT_SERVER: sentiment-server;  SHOT_BUNDLE: the model bundle
//   SHOT_TEXTS   posts for the batch, one per line (TweetEval validation tweets)
//   SHOT_OUT     where the PNGs go;  WEB_TOOLS: the npm prefix holding playwright-core
//   SHOT_ONLY    `monitor`: the monitor's screenshot only (no model needed)
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, launchChromium } from './support.mjs';
import { STORE, expandFeedback, writeDataDir } from './monitor-fixture.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/screenshots.sh)`);
  return v;
};
const OUT = env('SHOT_OUT');
const require = createRequire(path.join(env('WEB_TOOLS'), 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

const ONLY = process.env.SHOT_ONLY || '';

async function startServer(args) {
  const port = await freePort();
  const server = spawn(env('SHOT_SERVER'), ['--addr', `127.0.0.1:${port}`, '--static', env('SHOT_DIST'),
    '--rate-limit', '0', ...args], { stdio: 'inherit' });
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}index.html`)).ok) break;
    } catch {}
    if (i > 200) throw new Error('sentiment-server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    const exited = new Promise((r) => server.on('exit', r));
    server.kill('SIGTERM');
    await exited;
  };
  return { url, stop };
}

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'screenshots-'));
const browser = await launchChromium(chromium);
try {
  if (ONLY !== 'monitor') await pageShots();
  await monitorShot();
  console.log(`screenshots in ${OUT}`);
} finally {
  await browser.close();
  fs.rmSync(data, { recursive: true, force: true });
}

/** The monitor over the simulated history: its store at /model/, its feedback in the server. */
async function monitorShot() {
  const dir = path.join(data, 'monitor');
  writeDataDir(dir, expandFeedback());
  const { url, stop } = await startServer(['--model-dir', STORE, '--data-dir', dir]);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, locale: 'en-GB' });
    const page = await context.newPage();
    await page.goto(`${url}#monitor`);
    await page.locator('[data-testid="agreement-row"]').first().waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="report"]').first().waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(OUT, 'screenshot-monitor.png'), fullPage: true });
    await context.close();
  } finally {
    await stop();
  }
}

async function pageShots() {
// A post like the ones the page is for (a customer writing to an airline), and a batch of real
// tweets with a date each, a day apart in groups, so the trend chart has something to show.
const POST = '@united thanks for rebooking me so fast after the cancelled flight, the crew at the gate was great but the wifi on board never works!';
const BATCH = fs.readFileSync(env('SHOT_TEXTS'), 'utf8').split('\n').filter((t) => t.trim()).slice(0, 120);

fs.mkdirSync(path.join(data, 'page'));
const { url, stop } = await startServer(['--model-dir', env('SHOT_BUNDLE'), '--data-dir', path.join(data, 'page')]);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, locale: 'en-GB' });
  const page = await context.newPage();
  const byTest = (id) => page.locator(`[data-testid="${id}"]`);
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('[data-testid="model-status"]')?.dataset.status === 'ready', null, { timeout: 120_000 });

  // An explained post.
  await byTest('analyze-input').fill(POST);
  await byTest('analyze-run').click();
  await byTest('result-label').waitFor();
  await byTest('explain-run').click();
  await byTest('explanation').waitFor({ timeout: 60_000 });
  const analysePanel = page.locator('section.panel').first();
  await analysePanel.screenshot({ path: path.join(OUT, 'screenshot-explain.png') });

  // A batch: 120 tweets with dates, reviewed for a few rows by keyboard, one row explained.
  const day0 = Date.UTC(2026, 10, 2);
  const csv = 'date,text\n' + BATCH.map((t, i) => `${new Date(day0 + Math.floor(i / 8) * 86_400_000).toISOString().slice(0, 10)},"${t.replace(/"/g, '""')}"`).join('\n') + '\n';
  const file = path.join(data, 'posts.csv');
  fs.writeFileSync(file, csv);
  await byTest('batch-file').setInputFiles(file);
  await page.waitForFunction(() => document.querySelector('[data-testid="batch-date-column"]')?.value === 'date');
  await byTest('batch-run').click();
  await byTest('review-queue').waitFor({ timeout: 120_000 });
  await page.locator('[data-testid="batch-table"] tbody tr[data-row]').first().locator('td.text').click();
  for (const key of ['Enter', '3', '1', 'Enter']) await page.keyboard.press(key);
  const row = page.locator('[data-testid="batch-table"] tbody tr[data-row]').nth(1);
  await row.locator('[data-testid="row-explain"]').click();
  await page.locator('tr.explain-row [data-testid="explanation"]').waitFor({ timeout: 60_000 });
  await page.evaluate(() => { document.querySelector('.table-wrap').scrollTop = 0; });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="review-state"]')]
    .filter((s) => s.dataset.state).every((s) => s.dataset.state === 'sent'), null, { timeout: 30_000 });
  await page.locator('[data-testid="review-queue"]').screenshot({ path: path.join(OUT, 'screenshot-review.png') });
  await page.screenshot({ path: path.join(OUT, 'screenshot.png'), fullPage: true });

  // The dark theme, on the explained post.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.evaluate(() => window.scrollTo(0, 0));
  await byTest('explain-run').click();
  await page.locator('.result [data-testid="explanation"]').waitFor({ timeout: 60_000 });
  await page.screenshot({ path: path.join(OUT, 'screenshot-dark.png') });
} finally {
  await stop();
}
}
