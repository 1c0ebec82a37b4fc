#!/usr/bin/env bash
# Instructions per POST /api/feedback in a release sentiment-server, counted by callgrind (every
# thread). One keep-alive connection (feedback_load --connections 1) sends N sequential valid
# records, each fsync'd before its 201, once with N = 1,000 and once with 3,000; start-up and
# shutdown cancel in (I(3,000) - I(1,000)) / 2,000. A count of instructions hardly moves with the
# machine's load (~1-2 % between runs), so it compares two builds where wall-clock runs cannot
# (docs/benchmarks.md, "Commodity crates"). A benchmark, not a test: it asserts no figure. Needs valgrind
# (apt-get install valgrind); a build takes ~1 minute (two runs) a round.
#
# Usage: scripts/callgrind-feedback.sh [SERVER...]   (default: builds and measures
#        target/release/sentiment-server; give several binaries, e.g. copies of a base and a
#        changed build, to measure them in turns: env ROUNDS=2 runs the whole list twice)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ $# -eq 0 ]; then
  cargo build --release -q -p sentiment-server --bins --example feedback_load
  set -- "$TARGET/release/sentiment-server"
else
  cargo build --release -q -p sentiment-server --example feedback_load
fi
LOAD=$TARGET/release/examples/feedback_load
WORK=$(mktemp -d "${PWD}/$TARGET/callgrind-feedback.XXXXXX")   # on the project's disk, not tmpfs
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

# Instructions of the whole server process (start, N records, shutdown).
instructions() { # $1 server binary, $2 N
  local run="$WORK/run" addr
  rm -rf "$run" && mkdir -p "$run"
  valgrind --tool=callgrind --callgrind-out-file="$run/callgrind.out" \
    "$1" --addr 127.0.0.1:0 --data-dir "$run/data" --rate-limit 0 >"$run/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do grep -qs "listening on" "$run/server.log" && break; sleep 0.1; done
  addr=$(grep -o "listening on http://[0-9.:]*" "$run/server.log" | sed 's|listening on http://||')
  [ -n "$addr" ] || { echo "the server did not start under valgrind:" >&2; cat "$run/server.log" >&2; exit 1; }
  "$LOAD" run --url "http://$addr" --connections 1 --count "$2" --duration 3600s >"$run/load.txt"
  grep -q "acknowledged=$2 " "$run/load.txt" || { echo "not every record was acknowledged:" >&2; cat "$run/load.txt" >&2; exit 1; }
  kill -INT "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
  awk '/^(summary|totals):/ {print $2; exit}' "$run/callgrind.out"
}

for round in $(seq 1 "${ROUNDS:-1}"); do
  for server in "$@"; do
    small=$(instructions "$server" 1000)
    large=$(instructions "$server" 3000)
    echo "$server round $round: I(1,000) = $small, I(3,000) = $large, per request $(( (large - small) / 2000 ))"
  done
done
