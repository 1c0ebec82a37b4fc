#!/usr/bin/env bash
# The one run command: builds what is missing and serves the whole product on one port.
#
#   scripts/run.sh                                      # imports the production model from the Hub
#   SENTIMENT_CHECKPOINT=/path/to/checkpoint scripts/run.sh   # or any local checkpoint directory
#
# 1. installs the build tools if missing (scripts/install-web-tools.sh; ../shared/docs/TOOLCHAIN.md);
# 2. makes sure a model bundle exists: imports SENTIMENT_CHECKPOINT (a local directory), else
#    SENTIMENT_MODEL_SOURCE (default cardiffnlp/twitter-roberta-base-sentiment-latest) from the Hub,
#    at SENTIMENT_QUANT (default q8_0), into SENTIMENT_MODEL_DIR (default target/run/bundle);
# 3. builds the frontend (dist/) and the server;
# 4. starts sentiment-server on SENTIMENT_ADDR (default 127.0.0.1:8080): the app at /, the bundle
#    at /model/, the feedback API at /api/feedback, records in SENTIMENT_DATA_DIR (default ./data).
#    Hub sync only when HF_TOKEN and SENTIMENT_DATASET are set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOURCE=${SENTIMENT_CHECKPOINT:-${SENTIMENT_MODEL_SOURCE:-cardiffnlp/twitter-roberta-base-sentiment-latest}}
QUANT=${SENTIMENT_QUANT:-q8_0}
BUNDLE=${SENTIMENT_MODEL_DIR:-target/run/bundle}
export SENTIMENT_ADDR=${SENTIMENT_ADDR:-127.0.0.1:8080}
export SENTIMENT_DATA_DIR=${SENTIMENT_DATA_DIR:-data}
TARGET=${CARGO_TARGET_DIR:-target}

# Fail fast, before any long build, when the model can come neither from disk nor from the Hub.
if [[ ! -f "$BUNDLE/manifest.json" && ! -d "$SOURCE" ]]; then
  ENDPOINT=${HF_ENDPOINT:-https://huggingface.co}
  if ! python3 - "$ENDPOINT/api/models/$SOURCE" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=10)
PY
    echo "error: cannot reach the Hub ($ENDPOINT) to download $SOURCE; to run offline, point SENTIMENT_CHECKPOINT at a local checkpoint directory (config.json, model.safetensors or pytorch_model.bin, tokenizer files): SENTIMENT_CHECKPOINT=/path/to/checkpoint scripts/run.sh" >&2
    exit 1
  fi
fi

scripts/install-web-tools.sh --no-browser
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh
cargo build --release -p sentiment-trainer -p sentiment-server

if [[ ! -f "$BUNDLE/manifest.json" ]]; then
  "$TARGET/release/sentiment-trainer" import --from "$SOURCE" --quant "$QUANT" --out "$BUNDLE"
fi

cargo fetch
trunk build --release

exec "$TARGET/release/sentiment-server" --static dist --model-dir "$BUNDLE"
