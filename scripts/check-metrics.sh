#!/usr/bin/env bash
# /metrics of sentiment-server passes `promtool check metrics` (issue 3, acceptance 6).
# Starts a release server on a temp data dir, sends requests that fill every series (201, 200,
# 4xx, stats, health, static 404), and lints the exposition. Needs promtool: Debian package
# `prometheus` (apt-get install -y prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool missing: apt-get install -y prometheus"; exit 1; }
cargo build --release -q -p sentiment-server
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-metrics.XXXXXX")
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
${CARGO_TARGET_DIR:-target}/release/sentiment-server --addr 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do grep -qs "listening on" "$WORK/server.log" && break; sleep 0.05; done
URL=$(grep -o "http://[0-9.:]*" "$WORK/server.log" | head -1)
BODY='{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","text":"great","predicted":"positive","scores":{"negative":0.1,"neutral":0.2,"positive":0.7},"label":"neutral","model_version":"v1"}'
for _ in 1 2; do curl -s -o /dev/null -H 'content-type: application/json' -d "$BODY" "$URL/api/feedback"; done
curl -s -o /dev/null -H 'content-type: application/json' -d '{"id":1}' "$URL/api/feedback"
curl -s -o /dev/null "$URL/api/feedback/stats?since=2026-01-01"
curl -s -o /dev/null "$URL/healthz"
curl -s -o /dev/null "$URL/healthz/details"
curl -s -o /dev/null -X FROBNICATE "$URL/api/feedback"
curl -s -o /dev/null "$URL/no/such/file"
curl -s "$URL/metrics" >"$WORK/metrics.txt"
curl -s "$URL/metrics" | promtool check metrics
echo "promtool check metrics: OK ($(grep -vc '^#' "$WORK/metrics.txt") samples)"
