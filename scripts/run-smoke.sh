#!/usr/bin/env bash
# Shows the one run command working end to end: `scripts/run.sh` with a local checkpoint (the
# tiny fixture), then headless Chromium analyses a text and sends a correction (e2e/run-smoke.mjs),
# which must be stored exactly once. Also checks the offline refusal: without network and without
# a checkpoint, run.sh must exit non-zero within 30 s with one line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-run-smoke.XXXXXX")
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# 1. No checkpoint and an unreachable Hub: a quick, one-line refusal.
t0=$(date +%s)
if HF_ENDPOINT=http://127.0.0.1:9 SENTIMENT_MODEL_DIR="$WORK/none" scripts/run.sh >"$WORK/offline.out" 2>&1; then
  echo "run.sh should have refused to start without a model" >&2; exit 1
fi
lines=$(grep -c . "$WORK/offline.out")
took=$(( $(date +%s) - t0 ))
[ "$lines" -eq 1 ] && [ "$took" -le 30 ] || { echo "offline refusal: $lines lines in $took s" >&2; cat "$WORK/offline.out" >&2; exit 1; }
echo "offline refusal in ${took} s: $(cat "$WORK/offline.out")"

# 2. A local checkpoint: the whole product on a free port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SENTIMENT_CHECKPOINT=fixtures/tiny-roberta-bpe SENTIMENT_ADDR=127.0.0.1:$PORT SENTIMENT_DATA_DIR="$WORK/data" \
  SENTIMENT_MODEL_DIR="$WORK/bundle" scripts/run.sh >"$WORK/run.log" 2>&1 &
PID=$!
for _ in $(seq 1 3600); do
  grep -qs "listening on" "$WORK/run.log" && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/run.log" >&2; exit 1; }
  sleep 0.5
done
grep -q "listening on" "$WORK/run.log" || { echo "run.sh did not come up" >&2; exit 1; }
node e2e/run-smoke.mjs "http://127.0.0.1:$PORT" "$WORK/data" "$PWD/target/web-tools"
