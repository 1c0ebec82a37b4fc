#!/usr/bin/env bash
# The browser kernels' products for one roberta-base tweet (shared/kernels/tests/wasm_kernel_timing.rs)
# in headless Chromium: the simd128 forms, then the Relaxed SIMD build's (`relaxed-simd`: its Q8_0
# kernels both, when the engine computes the unsigned 8-bit dot exactly, and its Q4K one), each
# with V8's AVX-VNNI path and without it (`--js-flags=--no-enable-avx-vnni`), as on CPUs that
# lack AVX-VNNI. Prints milliseconds, best of eight, for one layer's weights used 12 times
# ("cached") and for 12 layers' own ("streamed", from memory as in a forward). Needs what
# scripts/test-wasm-kernels.sh needs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh
caps=$(mktemp -d)
trap 'rm -rf "$caps"' EXIT
scripts/webdriver-caps.sh "$caps/vnni.json"
scripts/webdriver-caps.sh "$caps/no-vnni.json" --js-flags=--no-enable-avx-vnni
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner WASM_BINDGEN_USE_BROWSER=1
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
for features in "" "--features relaxed-simd"; do
  for v8 in vnni no-vnni; do
    echo "--- ${features:-simd128} ($v8)"
    # shellcheck disable=SC2086
    WASM_BINDGEN_TEST_WEBDRIVER_JSON=$caps/$v8.json cargo test --release -p kernels \
      --target wasm32-unknown-unknown --test wasm_kernel_timing $features -- --include-ignored --nocapture 2>&1 |
      grep -E "products,|FAIL|panicked" || true
  done
done
