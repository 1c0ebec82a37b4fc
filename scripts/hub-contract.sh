#!/usr/bin/env bash
# Checks the fake Hub (backend/src/hub/fake.rs) against the official Python `huggingface_hub`
# client, and sentiment-server's sync end to end through it:
#   1. the real client creates a dataset, uploads regular and LFS files, commits, lists the tree
#      and downloads through the fake (scripts/hub_contract.py);
#   2. sentiment-server, pointed at the fake (HF_ENDPOINT), takes load, is stopped with SIGTERM
#      (final sync), and the real client finds exactly the acknowledged records in
#      data/<instance-id>/<segment>.jsonl; the token never appears in the server's output.
# Skips (exit 0) when python3 is missing. The venv is kept in target/hub-contract-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null; then echo "hub-contract: skipped (no python3)"; exit 0; fi
VENV=${HUB_CONTRACT_VENV:-target/hub-contract-venv}
if ! "$VENV/bin/python" -c "import huggingface_hub" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q huggingface_hub
fi
cargo build --release -q -p backend --bin sentiment-server --example fake_hub --example feedback_load
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-hub-contract.XXXXXX")
FAKE_PID=; SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
wait_for() { for _ in $(seq 1 200); do grep -qs "$1" "$2" && return 0; sleep 0.05; done; cat "$2"; exit 1; }

${CARGO_TARGET_DIR:-target}/release/examples/fake_hub --addr 127.0.0.1:0 --lfs-threshold 2048 >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
wait_for "listening on" "$WORK/fake.log"
export HF_ENDPOINT=$(grep -o "http://[0-9.:]*" "$WORK/fake.log" | head -1)
export HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_TELEMETRY=1   # the fake speaks LFS basic transfer, not Xet
curl -sf -X POST "$HF_ENDPOINT/api/repos/create" -H 'authorization: Bearer hf_setup' \
  -H 'content-type: application/json' -d '{"type":"dataset","name":"feedback-logs","organization":"acme"}' >/dev/null

TOKEN=hf_contract_secret_token_123
HF_TOKEN=$TOKEN SENTIMENT_DATASET=acme/feedback-logs ${CARGO_TARGET_DIR:-target}/release/sentiment-server --addr 127.0.0.1:0 \
  --data-dir "$WORK/data" --rate-limit 0 --sync-every 1s --sync-max-records 2000 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_for "listening on" "$WORK/server.log"
ADDR=$(grep -o "listening on http://[0-9.:]*" "$WORK/server.log" | sed 's|listening on http://||')
grep "Hub sync on" "$WORK/server.log"
${CARGO_TARGET_DIR:-target}/release/examples/feedback_load run --url "http://$ADDR" --connections 4 --duration 3s --acked "$WORK/acked.txt"
sleep 1.5
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; SERVER_PID=
grep -E "final sync|segment committed" "$WORK/server.log" | tail -2
if grep -q "$TOKEN" "$WORK/server.log"; then echo "FAIL: the token appears in the server's output"; exit 1; fi

SENTIMENT_SYNCED_REPO=acme/feedback-logs SENTIMENT_SYNCED_IDS="$WORK/acked.txt" "$VENV/bin/python" scripts/hub_contract.py
