#!/usr/bin/env bash
# The browser's own kernels (shared/tests/wasm_kernels.rs) against candle's ops, in both worker
# forms: simd128 under node, and with `relaxed-simd-q8` (the Q4K and Q8_0 kernels on Relaxed
# SIMD; the `worker_relaxed` build has the first) in headless Chromium through
# chromedriver (capabilities in e2e/webdriver.json). Not Relaxed SIMD under node: node 20 has it
# only behind a flag, in a pre-standard form whose 8-bit dot gives other sums (seen here).
# Needs wasm-bindgen-cli, Chromium and chromedriver (scripts/install-web-tools.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
echo "--- simd128, node"
cargo test --release -p shared --target wasm32-unknown-unknown --test wasm_kernels
echo "--- simd128 + relaxed-simd-q8, Chromium"
WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} \
  WASM_BINDGEN_TEST_WEBDRIVER_JSON=$PWD/e2e/webdriver.json \
  cargo test --release -p shared --target wasm32-unknown-unknown --test wasm_kernels --features relaxed-simd-q8
