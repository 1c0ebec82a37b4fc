#!/usr/bin/env bash
# Throughput of POST /api/feedback (issue 3, acceptance 4): a release sentiment-server on
# loopback with a fresh data dir on disk, loaded from a second process (feedback_load) over
# keep-alive connections. Every counted record was fsync'd before its 201. Prints records/s
# and p50/p90/p99 latency per concurrency level. A benchmark, not a test: it asserts nothing.
#
# Then one more run at the first level with STATS_CONNECTIONS (default 8) more connections
# hammering GET /api/feedback/stats (each every 5 ms: 1,600 a second, far above the rate limit
# of a real client): the acknowledgements' p99 beside the stats' own (issue 32.3).
#
# Usage: scripts/bench-feedback.sh        (env: DURATION=10s CONNECTIONS="16 32 64" STATS_CONNECTIONS=8
#                                           SERVER=path/to/sentiment-server to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-"16 32 64"}
cargo build --release -q -p sentiment-server --bins --example feedback_load
WORK=$(mktemp -d "${PWD}/target/bench-feedback.XXXXXX")   # on the project's disk, not tmpfs
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
STATS_CONNECTIONS=${STATS_CONNECTIONS:-8}
SERVER=${SERVER:-${CARGO_TARGET_DIR:-target}/release/sentiment-server}
"$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/data" --rate-limit 0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do grep -qs "listening on" "$WORK/server.log" && break; sleep 0.05; done
ADDR=$(grep -o "listening on http://[0-9.:]*" "$WORK/server.log" | sed 's|listening on http://||')
echo "machine: $(nproc) cores; data dir on $(df -P "$WORK" | awk 'NR==2 {print $1}')"
LOAD=${CARGO_TARGET_DIR:-target}/release/examples/feedback_load
for c in $CONNECTIONS; do
  "$LOAD" run --url "http://$ADDR" --connections "$c" --duration "$DURATION"
done
if [ "$STATS_CONNECTIONS" -gt 0 ]; then
  first=${CONNECTIONS%% *}
  echo "$first connections again, with $STATS_CONNECTIONS connections hammering GET /api/feedback/stats:"
  "$LOAD" run --url "http://$ADDR" --connections "$first" --duration "$DURATION" --stats-connections "$STATS_CONNECTIONS"
fi
curl -s "http://$ADDR/metrics" | grep -E '^sentiment_feedback_(records_stored_total|log_fsync_batches_total) ' || true
