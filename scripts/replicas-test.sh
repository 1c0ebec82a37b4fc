#!/usr/bin/env bash
# Three replicas, one logs dataset (issue 31.7): three release sentiment-servers with their own
# data dirs sync (every second) to one dataset on the Hub stand-in, which lists trees in pages
# of 7 entries (as the Hub pages them, with a cursor and a Link header). Each replica gets
# PER_REPLICA (default 2,000) corrections from its own client; meanwhile replica 2 is killed
# with SIGKILL and restarted on its data dir, and the Hub is down for a few seconds. After a
# SIGTERM (final sync) the dataset is read back through the Hub API with a client independent of
# ours (Python stdlib, following the Link headers) and must hold exactly 3 x PER_REPLICA
# records, each once: the ids the clients saw acknowledged. Sync must catch up by itself after
# the outage (no records pending on any replica within 60 s). Bounded: about 30 s; exit 1 on
# failure.
#
# Usage: scripts/replicas-test.sh        (env: PER_REPLICA=2000)
set -euo pipefail
cd "$(dirname "$0")/.."
PER_REPLICA=${PER_REPLICA:-2000}
cargo build --release -q -p sentiment-server --bins --example feedback_load -p hub-stand-in -p sentiment-trainer
T=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-replicas.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 200); do grep -qs "$1" "$2" && return 0; sleep 0.05; done; cat "$2"; exit 1; }

"$T/hub-stand-in" --addr 127.0.0.1:0 --tree-page-size 7 >"$WORK/hub.log" 2>&1 &
PIDS+=($!)
wait_for "listening on" "$WORK/hub.log"
HUB=$(grep -o "http://[0-9.:]*" "$WORK/hub.log" | head -1)
curl -sf -X POST "$HUB/api/repos/create" -H 'authorization: Bearer hf_setup' -H 'content-type: application/json' \
  -d '{"type":"dataset","name":"feedback-logs","organization":"acme"}' >/dev/null
hub_faults() { curl -sf -X PUT "$HUB/_fake/faults" -H 'content-type: application/json' -d "$1"; }

declare -A ADDR SERVER
start_replica() { # $1 = replica number; reuses its address after the first start
  local r=$1 log="$WORK/server-$1-$RANDOM.log"
  HF_ENDPOINT=$HUB HF_TOKEN=hf_replicas SENTIMENT_DATASET=acme/feedback-logs SENTIMENT_HUB_TIMEOUT=2s \
    "$T/sentiment-server" --addr "${ADDR[$r]:-127.0.0.1:0}" --data-dir "$WORK/data-$r" --rate-limit 0 \
    --sync-every 1s --segment-max-bytes 65536 >"$log" 2>&1 &
  SERVER[$r]=$!
  PIDS+=(${SERVER[$r]})
  wait_for "listening on" "$log"
  ADDR[$r]=$(grep -o "listening on http://[0-9.:]*" "$log" | sed 's|listening on http://||')
}
for r in 1 2 3; do start_replica "$r"; done

# Each client paces itself (2 connections, 3 ms after each answer: about 6 s for 2,000), so
# the kill and the outage fall in the middle of the load.
LOADS=()
for r in 1 2 3; do
  "$T/examples/feedback_load" run --url "http://${ADDR[$r]}" --connections 2 --duration 90s --count "$PER_REPLICA" \
    --pause-ms 3 --acked "$WORK/acked-$r.txt" >"$WORK/load-$r.txt" 2>&1 &
  LOADS+=($!)
done
sleep 1.5
echo "replica 2: kill -9 mid-load and restart on its data dir"
kill -9 "${SERVER[2]}"; wait "${SERVER[2]}" 2>/dev/null || true
start_replica 2
sleep 1
echo "the Hub goes down for 3 s (connections refused) while the replicas take records"
hub_faults '{"down": true, "down_for_ms": 3000, "tree_page_size": 7}'
for p in "${LOADS[@]}"; do wait "$p"; done
for r in 1 2 3; do echo "replica $r client: $(cat "$WORK/load-$r.txt")"; done
# Sync resumes by itself: wait (bounded) until no replica has records waiting for the Hub.
pending_all() {
  local sum=0 v
  for r in 1 2 3; do
    v=$(curl -s "http://${ADDR[$r]}/metrics" | awk '/^sentiment_sync_records_pending /{print $2}')
    sum=$((sum + ${v:-1}))
  done
  echo "$sum"
}
waited=0
until [ "$(pending_all)" = 0 ]; do
  waited=$((waited + 1))
  [ "$waited" -le 120 ] || { echo "FAIL: sync stalled: $(pending_all) records still pending after 60 s"; exit 1; }
  sleep 0.5
done
echo "every replica caught up $((waited / 2)) s after the load ended"
for r in 1 2 3; do kill -TERM "${SERVER[$r]}"; done
for r in 1 2 3; do wait "${SERVER[$r]}" 2>/dev/null || true; done
failed_rounds=$(cat "$WORK"/server-*.log | grep -c "sync attempt failed" || true)
echo "sync rounds that failed during the outage (all replicas): $failed_rounds"
[ "$failed_rounds" -gt 0 ] || { echo "FAIL: no replica saw the Hub outage"; exit 1; }
cat "$WORK"/acked-*.txt >"$WORK/acked.txt"

read_back() { python3 - "$HUB" "$WORK/acked.txt" "$((3 * PER_REPLICA))" "$1" <<'PY'
import collections, json, re, sys, urllib.request
hub, acked_file, expected, lines_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
all_lines = []
acked = set(l.strip() for l in open(acked_file) if l.strip())
url, paths, pages = f"{hub}/api/datasets/acme/feedback-logs/tree/main/data?recursive=true", [], 0
while url:
    with urllib.request.urlopen(url) as r:
        paths += [e["path"] for e in json.load(r) if e["type"] == "file"]
        link = r.headers.get("Link") or ""
        m = re.search(r'<([^>]+)>;\s*rel="next"', link)
        url, pages = (m.group(1) if m else None), pages + 1
assert len(paths) == len(set(paths)), "the listing repeated a path"
seen = collections.Counter()
for p in paths:
    with urllib.request.urlopen(f"{hub}/datasets/acme/feedback-logs/resolve/main/{p}") as r:
        for line in r.read().decode().splitlines():
            seen[json.loads(line)["id"]] += 1
            all_lines.append(line)
open(lines_out, "w").write("\n".join(sorted(all_lines)) + "\n")
folders = sorted(set(p.split("/")[1] for p in paths))
twice = sum(1 for c in seen.values() if c > 1)
missing = len(acked - set(seen))
print(f"dataset: {len(paths)} files in {folders} listed in {pages} pages; {sum(seen.values())} records, "
      f"{len(seen)} distinct, {twice} twice; acknowledged {len(acked)}, missing {missing}")
ok = len(seen) == expected and sum(seen.values()) == expected and twice == 0 and missing == 0 and len(acked) == expected
print("OK: exactly %d records, each once" % expected if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
}
read_back "$WORK/lines-before.txt"
# Compaction (sentiment-trainer compact, as the nightly workflow runs it), judged three days
# later so today's shards count as old: count and content unchanged, each record once.
NOW=$(python3 -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
HF_ENDPOINT=$HUB HF_TOKEN=hf_replicas "$T/sentiment-trainer" compact --dataset acme/feedback-logs --now "$NOW"
read_back "$WORK/lines-after.txt"
cmp -s "$WORK/lines-before.txt" "$WORK/lines-after.txt" || { echo "FAIL: compaction changed the records"; exit 1; }
echo "OK: compaction left the $((3 * PER_REPLICA)) records' count and content unchanged"
