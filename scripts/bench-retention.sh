#!/usr/bin/env bash
# Start time and peak memory of the feedback log with a long history, before and after
# retention (issue 32.5). A benchmark, not a test: it prints figures and asserts only that a
# retry of the oldest record is still recognised. Each step is its own process:
#  1. RECORDS (default 10,000,000) valid records written as 8 MiB segments, 40 days old;
#  2. open the log with all of them on disk (what a start did before retention);
#  3. retire every sealed segment (what the syncer does once they are in the dataset and older
#     than --retention): their ids go to dedup.idx, the segments leave the disk;
#  4. open again;
#  5. the release server on that data dir (every new id is looked up in dedup.idx) and on an
#     empty one, in turns: acknowledgements per second and p99 (feedback_load, 32 connections).
# Needs about 340 bytes of disk per record (3.4 GB for 10 million) under target/.
#
# Usage: scripts/bench-retention.sh        (env: RECORDS=10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-10000000}
cargo build --release -q -p sentiment-server --bins --example retention_bench --example feedback_load
B=${CARGO_TARGET_DIR:-target}/release/examples/retention_bench
WORK=$(mktemp -d "${PWD}/target/bench-retention.XXXXXX")   # on the project's disk, not tmpfs
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$B" generate --data-dir "$WORK/data" --records "$RECORDS"
echo "on disk: $(du -sh "$WORK/data/segments" | cut -f1) of segments"
echo -n "before retention  "; "$B" open --data-dir "$WORK/data"
"$B" retire --data-dir "$WORK/data"
echo "on disk: $(du -sh "$WORK/data/segments" | cut -f1) of segments, $(du -sh "$WORK/data/dedup.idx" | cut -f1) of dedup.idx"
echo -n "after retention   "; "$B" open --data-dir "$WORK/data"
T=${CARGO_TARGET_DIR:-target}/release
load() { # $1 = data dir: one 5 s run of feedback_load against a server on it
  : >"$WORK/server.log"   # (the server's own redirection happens later, in its process)
  "$T/sentiment-server" --addr 127.0.0.1:0 --data-dir "$1" --rate-limit 0 >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do grep -qs "listening on" "$WORK/server.log" && break; sleep 0.05; done
  local addr; addr=$(grep -o "listening on http://[0-9.:]*" "$WORK/server.log" | sed 's|listening on http://||')
  "$T/examples/feedback_load" run --url "http://$addr" --connections 32 --duration 5s | grep -o "rate=[^ ]* p50=[^ ]* p90=[^ ]* p99=[^ ]*.*"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}
for turn in 1 2; do
  echo "turn $turn: with dedup.idx of $RECORDS ids: $(load "$WORK/data")"
  echo "turn $turn: empty data dir:            $(load "$WORK/empty-$turn")"
done
