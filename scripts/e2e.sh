#!/usr/bin/env bash
# End-to-end test of the browser app in headless Chromium: builds dist/ with Trunk (release),
# two fixture bundles with the native trainer, then runs e2e/*.test.mjs with `node --test`.
# The test serves dist/ and the bundle through sentiment-server (or, if it does not build,
# through e2e/serve.py, and the feedback tests skip), and compares every answer with
# `sentiment-trainer predict` and every explanation with `sentiment-trainer explain`; it also
# reviews batch rows by keyboard, goes offline (the service worker), switches to Italian and
# back, and checks the dark theme; e2e/monitor.test.mjs checks the monitor view (#monitor) over
# fixtures/monitor-history. Outputs (screenshots, exports, server data) go to target/e2e/.
#
# Usage: scripts/e2e.sh [--no-build]   (--no-build reuses an existing dist/)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=1
[[ "${1:-}" == "--no-build" ]] && BUILD=0
OUT=target/e2e
mkdir -p "$OUT"
# Absolute, whether CARGO_TARGET_DIR is set (relative or not) or not.
mkdir -p "${CARGO_TARGET_DIR:-target}"
TARGET=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)

stage() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "==> [e2e:$name] $*"
  "$@"
  echo "==> [e2e:$name] done in $(( $(date +%s) - t0 )) s"
}

scripts/install-web-tools.sh
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh

if [[ "$BUILD" == 1 ]]; then
  # Trunk runs cargo offline (Trunk.toml): fetch first.
  stage fetch cargo fetch
  stage trunk trunk build --release
fi
for f in dist/*.wasm; do
  echo "==> [e2e:size] $f: $(stat -c%s "$f") bytes raw, $(gzip -9c "$f" | wc -c) bytes gzip"
done

stage trainer cargo build --release -p sentiment-trainer
SERVER=
if cargo build --release -p sentiment-server; then
  SERVER=$TARGET/release/sentiment-server
else
  [ "${CI:-}" = true ] && { echo "error: sentiment-server does not build (CI=true: the feedback tests may not be skipped)" >&2; exit 1; }
  echo "warning: sentiment-server does not build; serving with e2e/serve.py, feedback tests skip" >&2
fi

T=$TARGET/release/sentiment-trainer
rm -rf "$OUT/bundle" "$OUT/bundle-v2"
stage bundle "$T" import --from fixtures/tiny-roberta-bpe --quant q8_0 --version e2e-v1 --out "$OUT/bundle"
# A "newly published" version: other weights format, so other hashes.
stage bundle-v2 "$T" import --from fixtures/tiny-roberta-bpe --quant f32 --version e2e-v2 --out "$OUT/bundle-v2"

export E2E_DIST=$PWD/dist E2E_BUNDLE=$PWD/$OUT/bundle E2E_BUNDLE2=$PWD/$OUT/bundle-v2
export E2E_TRAINER=$T E2E_SERVER=$SERVER E2E_OUT=$PWD/$OUT WEB_TOOLS=$PWD/target/web-tools
stage browser node --test --test-concurrency=1 e2e/
echo "==> [e2e] screenshots: $OUT/{batch,batch-phone,review,italian,dark,monitor}.png"
