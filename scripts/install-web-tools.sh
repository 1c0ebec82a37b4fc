#!/usr/bin/env bash
# Installs what the browser build and its end-to-end test need, skipping anything already at the
# right version (safe to run on every CI stage). See ../shared/docs/TOOLCHAIN.md for why each
# version is pinned:
#   - Trunk 0.21.14 (0.22 needs a newer rustc);
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock (Trunk refuses others);
#   - wasm-opt from npm `binaryen@132` (Debian's 108 breaks the module at load);
#   - Debian chromium for the headless tests (`npx playwright install` cannot work offline).
#
# Usage: scripts/install-web-tools.sh [--no-browser]
# Afterwards callers add the npm tools to PATH:
#   export PATH="$PWD/target/web-tools/node_modules/.bin:$PATH"
# (or `source scripts/web-tools-env.sh`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0
TOOLS_DIR=target/web-tools
WITH_BROWSER=1
[[ "${1:-}" == "--no-browser" ]] && WITH_BROWSER=0

log() { echo "==> [install-web-tools] $*"; }

# wasm-bindgen-cli must match the library exactly; read the version from the lock file rather
# than repeating it here, so a `cargo update` cannot silently desynchronise them.
WASM_BINDGEN_VERSION=$(awk '
  $0 == "name = \"wasm-bindgen\"" { found = 1; next }
  found && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)
if [[ -z "$WASM_BINDGEN_VERSION" ]]; then
  echo "error: no wasm-bindgen entry in Cargo.lock (run cargo fetch first)" >&2
  exit 1
fi

log "rust target wasm32-unknown-unknown"
rustup target add wasm32-unknown-unknown

if [[ "$(trunk --version 2>/dev/null || true)" == "trunk $TRUNK_VERSION" ]]; then
  log "trunk $TRUNK_VERSION already installed"
else
  log "installing trunk $TRUNK_VERSION (10-20 min on 2 cores)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" == "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  log "wasm-bindgen-cli $WASM_BINDGEN_VERSION already installed"
else
  # No --locked: a pinned dependency in its lock file is not served by the registry here.
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

mkdir -p "$TOOLS_DIR"
if [[ -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" \
      && "$("$TOOLS_DIR/node_modules/.bin/wasm-opt" --version 2>/dev/null)" == *"version ${BINARYEN_VERSION%%.*}"* \
      && -d "$TOOLS_DIR/node_modules/playwright-core" ]]; then
  log "binaryen $BINARYEN_VERSION and playwright-core already installed"
else
  log "installing binaryen@$BINARYEN_VERSION and playwright-core into $TOOLS_DIR"
  npm install --no-audit --no-fund --prefix "$TOOLS_DIR" "binaryen@$BINARYEN_VERSION" playwright-core
fi

if [[ "$WITH_BROWSER" == 1 ]]; then
  if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    log "chromium already installed"
  else
    log "installing chromium from Debian"
    SUDO=; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium chromium-driver
  fi
fi

log "done; add $PWD/$TOOLS_DIR/node_modules/.bin to PATH"
