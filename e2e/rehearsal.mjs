// The browser half of scripts/rehearsal.sh: the deployed page on its static-Space origin, its
// model from the Hub stand-in (which redirects LFS files to a separate content-delivery origin),
// its feedback server on a third origin. One browser profile throughout, as a returning visitor:
//   1. the page is cross-origin isolated, loads the first champion, analyses a post and sends a
//      correction, which the server syncs into the logs dataset (read back from the Hub);
//   2. a model URL that does not exist: the page names the URL it tried and how to set it;
//   3. the nightly run (shell function nightly_step) promotes a v2: reloaded, the page
//      announces it and uses it;
//   4. rollback (rollback_step): reloaded, the page is back on v1.
//   node e2e/rehearsal.mjs <page url> <hub endpoint> <dataset id> <v1> <npm prefix with playwright-core>
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { launchChromium } from './support.mjs';

const [pageUrl, hub, dataset, v1, webTools] = process.argv.slice(2);
const require = createRequire(path.join(webTools, 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const log = (m) => console.log(`==> [rehearsal:browser] ${m}`);

/** Every record line in the logs dataset's data files at main. */
async function datasetRecords() {
  const list = await fetch(`${hub}/api/datasets/${dataset}/tree/main/data?recursive=true`);
  if (list.status === 404) return [];
  const files = (await list.json()).filter((e) => e.type === 'file' && e.path.endsWith('.jsonl'));
  const out = [];
  for (const f of files) {
    const body = await (await fetch(`${hub}/datasets/${dataset}/resolve/main/${f.path}`)).text();
    out.push(...body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)));
  }
  return out;
}

function step(fn) {
  // The shell functions scripts/rehearsal.sh exported.
  execFileSync('bash', ['-c', fn], { stdio: 'inherit' });
}

const browser = await launchChromium(chromium);
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const byTest = (id) => page.locator(`[data-testid="${id}"]`);
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  const ready = async () => {
    await page.waitForFunction(() => {
      const s = document.querySelector('[data-testid="model-status"]')?.dataset.status;
      return s === 'ready' || s === 'failed' || document.querySelector('[data-testid="model-error"]');
    }, null, { timeout: 180_000 });
    const err = await byTest('model-error').count() ? await byTest('model-error').textContent() : '';
    assert.equal(err, '', `the model loads: ${err} ${problems.join('; ')}`);
    return (await byTest('model-version').textContent()).trim();
  };

  // 1. First visit.
  await page.goto(pageUrl);
  assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'the page is cross-origin isolated (COOP/COEP from the Space front matter)');
  const meta = await page.evaluate(() => ({
    model: document.querySelector('meta[name="sentiment-model-url"]').content,
    api: document.querySelector('meta[name="sentiment-api-url"]').content,
  }));
  assert.ok(meta.model.startsWith(hub) && new URL(meta.api).origin !== new URL(pageUrl).origin, JSON.stringify(meta));
  assert.equal(await ready(), v1, 'the first champion');
  log(`cross-origin isolated; model ${v1} from ${meta.model}; feedback to ${meta.api}`);
  const text = `rehearsal ${Date.now()}: the new release broke my login again`;
  await byTest('analyze-input').fill(text);
  await byTest('analyze-run').click();
  await byTest('result-label').waitFor({ timeout: 30_000 });
  const predicted = await byTest('result-label').getAttribute('data-label');
  const corrected = ['negative', 'neutral', 'positive'].find((l) => l !== predicted);
  await byTest(`feedback-label-${corrected}`).click();
  await byTest('feedback-send').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="feedback-state"]')?.dataset.state === 'sent',
    null, { timeout: 30_000 });
  let mine = [];
  for (let i = 0; i < 120 && mine.length === 0; i++) {
    mine = (await datasetRecords()).filter((r) => r.text === text);
    if (mine.length === 0) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(mine.length, 1, 'the correction is in the logs dataset, once');
  assert.equal(mine[0].label, corrected);
  assert.equal(mine[0].model_version, v1);
  log(`analysed → ${predicted}; correction to ${corrected} synced into ${dataset}`);

  // 2. A model that is not there: the error names the URL tried and how to set it.
  const missing = await context.newPage();
  await missing.goto(`${pageUrl}/?model=${encodeURIComponent(`${hub}/acme/no-such-model/resolve/main/`)}`);
  await missing.locator('[data-testid="model-error"]').waitFor({ timeout: 60_000 });
  const message = await missing.locator('[data-testid="model-error"]').textContent();
  assert.match(message, /acme\/no-such-model/, 'names the URL it tried');
  assert.match(message, /SENTIMENT_MODEL_REPO|sentiment-model-url|\?model=/, 'says how to set it');
  await missing.close();
  log(`missing model: "${message.trim().slice(0, 160)}…"`);

  // 3. The nightly run promotes a v2; a returning visitor is told.
  step('nightly_step');
  const registry = await (await fetch(`${hub}/${process.env.MODEL}/resolve/main/registry.json`)).json();
  const v2 = registry.champion;
  assert.notEqual(v2, v1, 'nightly promoted a new champion');
  await page.reload();
  assert.equal(await ready(), v2, 'the page now runs v2');
  await byTest('model-notice').waitFor({ timeout: 30_000 });
  assert.equal(await byTest('model-notice').getAttribute('data-kind'), 'new-model');
  assert.match(await byTest('model-notice').textContent(), new RegExp(`${v2}.*${v1}`));
  log(`after nightly: ${v2} announced ("${(await byTest('model-notice').textContent()).trim()}")`);

  // 4. Rollback: the page is back on v1.
  step('rollback_step');
  await page.reload();
  assert.equal(await ready(), v1, 'the page runs v1 again after the rollback');
  log(`after rollback: ${v1} again`);
  assert.deepEqual(problems, [], 'no page errors');
} finally {
  await browser.close();
}
