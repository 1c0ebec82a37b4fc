#!/usr/bin/env bash
# Assembles the feedback server's Docker Space: the sources the Dockerfile builds from (as
# committed: `git archive HEAD`, less what .dockerignore leaves out of the build) and the
# Space's README.md whose front matter makes it a Docker Space on the Dockerfile's port.
# Run by .github/workflows/deploy-server.yml (and the rehearsal, scripts/rehearsal.sh).
#
# Usage: scripts/assemble-server-space.sh OUT_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:?usage: assemble-server-space.sh OUT_DIR}
fail() { echo "::error::$*" >&2; exit 1; }

# The port the container listens on (EXPOSE) is the Space's app_port.
PORT=$(sed -n 's/^EXPOSE \([0-9]*\).*/\1/p' Dockerfile)
[[ -n "$PORT" ]] || fail "Dockerfile has no EXPOSE line: the Space needs the port it listens on"
grep -q "SENTIMENT_ADDR=0.0.0.0:$PORT" Dockerfile || fail "Dockerfile's SENTIMENT_ADDR does not listen on 0.0.0.0:$PORT (its EXPOSE)"

rm -rf "$OUT"
mkdir -p "$OUT"
# What the build needs: the workspace (every member's manifest and sources) and the Dockerfile.
git archive --format=tar HEAD Cargo.toml Cargo.lock .cargo .dockerignore Dockerfile shared backend frontend \
  | tar -x -C "$OUT"
cat >"$OUT/README.md" <<README
---
title: Sentiment Monitor feedback server
emoji: 📥
colorFrom: blue
colorTo: gray
sdk: docker
app_port: $PORT
pinned: false
---

The feedback server of Sentiment Monitor (\`sentiment-server\`): stores each correction durably
and syncs them to the Hub logs dataset. Built from this folder's Dockerfile. Settings (Space
variables and secrets): \`SENTIMENT_DATASET\`, \`SENTIMENT_CORS_ORIGINS\`, \`HF_TOKEN\` (secret);
attach persistent storage so records not yet synced survive a restart (it mounts at /data).
README
echo "Assembled the Docker Space in $OUT (app_port $PORT, $(find "$OUT" -type f | wc -l) files)"
