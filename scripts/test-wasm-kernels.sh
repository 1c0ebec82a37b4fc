#!/usr/bin/env bash
# The browser's own kernels (shared/kernels/tests/wasm_kernels.rs) against candle's ops, in both worker
# builds: simd128 under node, and with `relaxed-simd` (the `worker_relaxed` build) in headless
# Chromium through chromedriver (capabilities in e2e/webdriver.json) — twice: as V8 runs on this
# CPU, and without its AVX-VNNI path (`--js-flags=--no-enable-avx-vnni`), where the relaxed Q8_0
# kernel's probe must fail and the simd128 one take over. Each run is compiled with what the
# probe must say (EXPECT_RELAXED_U8_DOT), and with `tested-forms`: each run prints which kernel
# forms ran ("kernel form q8_0 relaxed-simd: run", or "not run" and why) and fails when the build
# and engine have one that did not run. Not Relaxed SIMD under node: node 20 has it only
# behind a flag, in a pre-standard form whose 8-bit dot gives other sums (seen here).
# Needs wasm-bindgen-cli, Chromium and chromedriver (scripts/install-web-tools.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/web-tools-env.sh
source scripts/web-tools-env.sh
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
echo "--- simd128, node"
cargo test --release -p kernels --target wasm32-unknown-unknown --test wasm_kernels --features tested-forms -- --nocapture

caps=$(mktemp -d)
trap 'rm -rf "$caps"' EXIT
scripts/webdriver-caps.sh "$caps/as-is.json"
scripts/webdriver-caps.sh "$caps/no-vnni.json" --js-flags=--no-enable-avx-vnni
# V8 computes the unsigned 8-bit dot exactly with AVX-VNNI's vpdpbusd, and with three SSSE3
# instructions (which saturate) elsewhere on x86-64. Other CPUs: not checked. On a CPU with
# AVX-VNNI-INT8 (Arrow/Lunar Lake, Sierra Forest; /proc/cpuinfo may not list it) V8 uses the
# signed vpdpbssd instead and the probe rightly fails: there, run with EXPECT_RELAXED_U8_DOT=
# set to `inexact` (or empty to leave it unchecked).
as_is=
if [ "$(uname -m)" = x86_64 ]; then
  if grep -qw avx_vnni /proc/cpuinfo && ! grep -qw avx_vnni_int8 /proc/cpuinfo; then as_is=exact; else as_is=inexact; fi
fi
as_is=${EXPECT_RELAXED_U8_DOT-$as_is}
for run in as-is no-vnni; do
  expect=$as_is
  [ "$run" = no-vnni ] && [ "$(uname -m)" = x86_64 ] && expect=inexact
  echo "--- simd128 + relaxed-simd, Chromium ($run; the relaxed Q8_0 probe must say: ${expect:-anything})"
  EXPECT_RELAXED_U8_DOT=$expect WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON=$caps/$run.json \
    cargo test --release -p kernels --target wasm32-unknown-unknown --test wasm_kernels --features relaxed-simd,tested-forms -- --nocapture
done
