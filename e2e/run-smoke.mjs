// Drives the page that `scripts/run.sh` serves: waits for the model, analyses a text, sends a
// correction, and checks the server stored exactly that one record.
//   node e2e/run-smoke.mjs <base url> <server data dir> <npm prefix with playwright-core>
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './support.mjs';

const [url, dataDir, webTools] = process.argv.slice(2);
const require = createRequire(path.join(webTools, 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

const browser = await launchChromium(chromium);
try {
  const page = await browser.newPage();
  const byTest = (id) => page.locator(`[data-testid="${id}"]`);
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('[data-testid="model-status"]')?.dataset.status === 'ready',
    null, { timeout: 120_000 });
  const text = `run.sh smoke test ${Date.now()}: the delivery was late again`;
  await byTest('analyze-input').fill(text);
  await byTest('analyze-run').click();
  await byTest('result-label').waitFor({ timeout: 30_000 });
  const predicted = await byTest('result-label').getAttribute('data-label');
  const scores = {};
  for (const l of ['negative', 'neutral', 'positive']) scores[l] = Number(await byTest(`score-${l}`).getAttribute('data-score'));
  const sum = Object.values(scores).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-3, `scores sum to 1: ${JSON.stringify(scores)}`);
  // Correct it to a label other than the predicted one.
  const corrected = ['negative', 'neutral', 'positive'].find((l) => l !== predicted);
  await byTest(`feedback-label-${corrected}`).click();
  await byTest('feedback-send').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="feedback-state"]')?.dataset.state === 'sent',
    null, { timeout: 30_000 });
  const seg = path.join(dataDir, 'segments');
  const records = fs.readdirSync(seg).flatMap((f) => fs.readFileSync(path.join(seg, f), 'utf8').split('\n'))
    .filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((r) => r.text === text);
  assert.equal(records.length, 1, 'exactly one stored record');
  assert.equal(records[0].label, corrected);
  assert.equal(records[0].predicted, predicted);
  console.log(`run.sh smoke: analysed "${text}" → ${predicted} ${JSON.stringify(scores)}; correction to ${corrected} stored once`);
} finally {
  await browser.close();
}
