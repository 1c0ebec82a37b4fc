#!/usr/bin/env bash
# Crash safety of sentiment-server's feedback log (issue 3, acceptance 2).
#
# Runs the server under load from a second process (the feedback_load example, which retries an
# unanswered id like a browser would), kills it with SIGKILL at random moments KILLS times
# (default 20), restarts it each time, and finally checks the log: every acknowledged id is
# stored exactly once, no id twice, and no partial (torn) line remains. Every TORN_EVERY-th kill
# (default 5; 0 = never) also appends half a record line to the newest segment, simulating a
# write torn by a power cut, which the restart must cut away. Prints the counts; exit 1 on failure.
#
# Usage: scripts/crash-test.sh            (env: KILLS=20 TORN_EVERY=5 CONNECTIONS=32)
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${KILLS:-20}
TORN_EVERY=${TORN_EVERY:-5}
CONNECTIONS=${CONNECTIONS:-32}

cargo build --release -q -p sentiment-server --bins --example feedback_load
BIN=${CARGO_TARGET_DIR:-target}/release/sentiment-server
LOAD=${CARGO_TARGET_DIR:-target}/release/examples/feedback_load
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-crash.XXXXXX")
DATA=$WORK/data
SERVER_PID=
LOAD_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null || true
}
trap cleanup EXIT

ADDR=127.0.0.1:0
start_server() { # $1 = log file; sets SERVER_PID and ADDR (the first start picks a free port)
  "$BIN" --addr "$ADDR" --data-dir "$DATA" --rate-limit 0 >"$1" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    if grep -qs "listening on http://" "$1"; then
      ADDR=$(grep -o "listening on http://[0-9.:]*" "$1" | head -1 | sed 's|listening on http://||')
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "server did not start:"; cat "$1"; exit 1
}

start_server "$WORK/server-0.log"
DURATION=$((KILLS * 2 + 4))
"$LOAD" run --url "http://$ADDR" --connections "$CONNECTIONS" --duration "${DURATION}s" \
  --acked "$WORK/acked.txt" --attempted "$WORK/attempted.txt" >"$WORK/load.txt" 2>&1 &
LOAD_PID=$!

injected=0
for i in $(seq 1 "$KILLS"); do
  sleep "0.$((RANDOM % 9 + 2))$((RANDOM % 10))"   # up for 0.20-1.09 s under load
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  if [ "$TORN_EVERY" -gt 0 ] && [ $((i % TORN_EVERY)) -eq 0 ]; then
    newest=$(ls "$DATA"/segments/*.jsonl | sort | tail -1)
    printf '%s' '{"id":"ffffffff-ffff-4fff-8fff-ffffffffffff","text":"torn wri' >>"$newest"
    injected=$((injected + 1))
  fi
  start_server "$WORK/server-$i.log"
done
echo "killed and restarted $KILLS times; waiting for the load generator to finish"
wait "$LOAD_PID"
LOAD_PID=
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

cut=$(cat "$WORK"/server-*.log | grep -c "cutting a torn last write" || true)
echo "load: $(cat "$WORK/load.txt")"
echo "kills=$KILLS torn_tails_injected=$injected torn_tails_cut_on_restart=$cut"
"$LOAD" verify --data-dir "$DATA" --acked "$WORK/acked.txt" --attempted "$WORK/attempted.txt"
status=$?
if [ "$cut" -lt "$injected" ]; then echo "FAIL: an injected torn tail was not cut"; exit 1; fi
rm -rf "$WORK"
exit $status
