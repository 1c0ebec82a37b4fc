#!/usr/bin/env bash
# The README's screenshots (docs/screenshot*.png), taken in headless Chromium with a real
# sentiment model: all-MiniLM-L6-v2 fine-tuned on TweetEval (scripts/finetune-minilm.sh makes
# one; the team's is in /work/artifacts/minilm-tweeteval). See e2e/screenshots.mjs for what each
# shows. Not part of the test command: run it by hand after a change to the page's looks.
#
#   MODEL=<bundle or checkpoint dir> scripts/screenshots.sh [--no-build]
#   ONLY=monitor scripts/screenshots.sh [--no-build]   (the monitor view's only: no model needed)
#
# A checkpoint directory is imported at q8_0 first (into target/screenshots/bundle). The batch
# uses the TweetEval validation tweets of ../shared (TEXTS overrides).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ONLY=${ONLY:-}
[[ "$ONLY" == monitor ]] || MODEL=${MODEL:?set MODEL to the fine-tuned model: a bundle directory or a checkpoint directory}
TEXTS=${TEXTS:-../shared/data/tweeteval-sentiment/val_text.txt}
OUT=target/screenshots
mkdir -p "$OUT"
TARGET=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)

scripts/install-web-tools.sh
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh
if [[ "${1:-}" != "--no-build" ]]; then
  cargo fetch
  trunk build --release
fi
cargo build --release -p sentiment-trainer -p sentiment-server
BUNDLE=${MODEL:-}
if [[ -n "$BUNDLE" && ! -f "$MODEL/manifest.json" ]]; then
  BUNDLE=$OUT/bundle
  rm -rf "$BUNDLE"
  "$TARGET/release/sentiment-trainer" import --from "$MODEL" --quant q8_0 --out "$BUNDLE"
fi
SHOT_DIST=$PWD/dist SHOT_SERVER=$TARGET/release/sentiment-server SHOT_BUNDLE=$([[ -n "$BUNDLE" ]] && cd "$BUNDLE" && pwd) \
  SHOT_ONLY=$ONLY SHOT_TEXTS=$TEXTS SHOT_OUT=$PWD/docs WEB_TOOLS=$PWD/target/web-tools node e2e/screenshots.mjs
