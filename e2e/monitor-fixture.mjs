// The monitor view's simulated history (fixtures/monitor-history, made by
// scripts/make-monitor-fixture.py): its model store, and its feedback as records in the
// server's segment files. Shared by the monitor's e2e test and the README's screenshot.
import fs from 'node:fs';
import path from 'node:path';

export const FIXTURE = new URL('../fixtures/monitor-history/', import.meta.url).pathname;
export const STORE = path.join(FIXTURE, 'store');
const LABELS = ['negative', 'neutral', 'positive'];

/** The feedback records the fixture's counts stand for: each (day, version, label, predicted)
 *  count spread over 08:00-20:00 of its day, in time order. */
export function expandFeedback() {
  const counts = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'feedback.json'), 'utf8'));
  const records = [];
  let n = 0;
  for (const c of counts) {
    for (let k = 0; k < c.count; k++, n++) {
      const ms = Date.parse(`${c.day}T08:00:00.000Z`) + Math.floor((k * 12 * 3600_000) / c.count);
      records.push({
        id: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
        text: `simulated post ${n}`,
        predicted: c.predicted,
        scores: Object.fromEntries(LABELS.map((l) => [l, l === c.predicted ? 0.8 : 0.1])),
        label: c.label,
        model_version: c.model_version,
        received_at: new Date(ms).toISOString(),
      });
    }
  }
  records.sort((a, b) => a.received_at.localeCompare(b.received_at));
  return records;
}

/** A fresh data dir for sentiment-server holding `records` as its one segment. */
export function writeDataDir(dir, records) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'segments'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'segments', '00000001.jsonl'), records.map((r) => JSON.stringify(r) + '\n').join(''));
}
