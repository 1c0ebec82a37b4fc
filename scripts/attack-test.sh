#!/usr/bin/env bash
# Connection hygiene of sentiment-server (issue 32.1), against the release binary on loopback:
#  1. ATTACK (default 2000) connections each send half a request header and then nothing,
#     while a normal client (feedback_load, 4 keep-alive connections) posts feedback. Every
#     half-open connection must be closed by the server within the header timeout (+2 s of
#     slack); the normal client's latency is printed (a figure, not asserted: 2 shared cores).
#  2. With --max-connections 100, 300 half-open connections: the surplus is closed at once, the
#     log says so once, and /metrics counts it; a normal client still gets through after.
# Bounded: every phase stops by itself (about 30 s in all). Exit 1 on failure.
#
# Usage: scripts/attack-test.sh        (env: ATTACK=2000 HEADER_TIMEOUT=5)
set -euo pipefail
cd "$(dirname "$0")/.."
ATTACK=${ATTACK:-2000}
HEADER_TIMEOUT=${HEADER_TIMEOUT:-5}
cargo build --release -q -p sentiment-server --bins --example feedback_load --example conn_attack
T=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-attack.XXXXXX")
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

start_server() { # $1 = log, rest = extra flags; sets SERVER_PID and URL
  local log=$1; shift
  "$T/sentiment-server" --addr 127.0.0.1:0 --data-dir "$WORK/data-$RANDOM" --rate-limit 0 \
    --header-timeout "${HEADER_TIMEOUT}s" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do grep -qs "listening on" "$log" && break; sleep 0.05; done
  URL=$(grep -o "http://[0-9.:]*" "$log" | head -1)
  [ -n "$URL" ] || { echo "server did not start:"; cat "$log"; exit 1; }
}
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
field() { grep -o "$1=[0-9.]*" <<<"$2" | head -1 | cut -d= -f2; }
fail=0

echo "--- 1. $ATTACK half-open connections, header timeout ${HEADER_TIMEOUT}s"
start_server "$WORK/server1.log"
HOLD=$((HEADER_TIMEOUT * 3 + 5))
"$T/examples/conn_attack" --url "$URL" --connections "$ATTACK" --hold "${HOLD}s" >"$WORK/attack.txt" &
ATTACK_PID=$!
sleep 1
open_during=$(curl -s "$URL/metrics" | awk '/^sentiment_http_connections_open /{print $2}')
"$T/examples/feedback_load" run --url "$URL" --connections 4 --duration "$((HEADER_TIMEOUT - 1))s" | tee "$WORK/load.txt"
wait "$ATTACK_PID"
attack=$(cat "$WORK/attack.txt")
echo "attack: $attack"
echo "connections open on the server while the normal client ran: $open_during"
closed=$(field closed_by_server "$attack"); max=$(field close_max_s "$attack"); still=$(field still_open "$attack")
acked=$(field acknowledged "$(cat "$WORK/load.txt")")
if [ "$closed" -ne "$ATTACK" ] || [ "$still" -ne 0 ]; then
  echo "FAIL: $closed of $ATTACK half-open connections closed by the server ($still still open after ${HOLD}s)"; fail=1
elif awk -v m="$max" -v t="$HEADER_TIMEOUT" 'BEGIN { exit !(m > t + 2) }'; then
  echo "FAIL: the last half-open connection was closed after ${max}s (header timeout ${HEADER_TIMEOUT}s)"; fail=1
else
  echo "OK: all $ATTACK half-open connections closed by the server, the last after ${max}s"
fi
[ "${acked:-0}" -gt 0 ] || { echo "FAIL: the normal client got no acknowledgement"; fail=1; }
echo "normal client during the attack: $(grep -o 'p50=[^ ]* p90=[^ ]* p99=[^ ]*' "$WORK/load.txt")"
sleep 0.5
open_after=$(curl -s "$URL/metrics" | awk '/^sentiment_http_connections_open /{print $2}')
echo "connections open after: $open_after"
stop_server

echo "--- 2. connection cap: --max-connections 100, 300 half-open connections"
start_server "$WORK/server2.log" --max-connections 100
"$T/examples/conn_attack" --url "$URL" --connections 300 --hold 3s >"$WORK/attack2.txt"
echo "attack: $(cat "$WORK/attack2.txt")"
refused=$(curl -s "$URL/metrics" | awk '/^sentiment_http_connections_refused_total /{print $2}')
warned=$(grep -c "connection cap reached" "$WORK/server2.log" || true)
echo "refused by the cap: $refused; log lines about it: $warned"
if [ "${refused:-0}" -lt 150 ] || [ "$warned" -lt 1 ]; then
  echo "FAIL: the cap did not hold or was not logged"; fail=1
fi
# Once they time out, a normal client gets in again.
sleep "$((HEADER_TIMEOUT + 1))"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")
[ "$code" = 200 ] || { echo "FAIL: /healthz answered $code after the attack"; fail=1; }
stop_server
[ "$fail" -eq 0 ] && echo "attack-test: OK"
exit "$fail"
