#!/usr/bin/env bash
# Assembles the static Space from a built dist/: the page with the deployment's model URL and
# feedback API URL written into index.html, and the Space's README.md whose front matter makes
# it a static Space served cross-origin isolated (COOP/COEP: the worker's wasm needs it).
# Run by .github/workflows/deploy-space.yml (and the rehearsal, scripts/rehearsal.sh).
#
#   SENTIMENT_MODEL_REPO  the Hub model repo (owner/name) the page loads its champion from, or
#                         a bundle URL (a folder, ending in /); the workflow passes
#                         SENTIMENT_REGISTRY when it is not set
#   SENTIMENT_API_URL     the feedback server's origin (the Docker Space: https://OWNER-SPACE.hf.space)
#   SENTIMENT_DATASET     optional: the logs dataset, listed in the Space's card
#   HF_ENDPOINT           the Hub (default https://huggingface.co)
#
# Usage: scripts/assemble-space.sh DIST_DIR OUT_DIR     (fails with one line when a setting is missing)
set -euo pipefail
DIST=${1:?usage: assemble-space.sh DIST_DIR OUT_DIR}
OUT=${2:?usage: assemble-space.sh DIST_DIR OUT_DIR}
fail() { echo "::error::$*" >&2; exit 1; }

[[ -n "${SENTIMENT_MODEL_REPO:-}" ]] || fail "no model for the page: set the repository variable SENTIMENT_REGISTRY to the Hub model repo (OWNER/NAME) the page loads its model from, or SENTIMENT_MODEL_REPO to another repo or bundle URL (Settings → Secrets and variables → Actions → Variables; docs/deploy.md)"
[[ -n "${SENTIMENT_API_URL:-}" ]] || fail "SENTIMENT_API_URL is not set: set the repository variable SENTIMENT_API_URL to the feedback server's URL, e.g. https://OWNER-SERVER.hf.space (docs/deploy.md)"
[[ "$SENTIMENT_API_URL" =~ ^https?://[^/]+ ]] || fail "SENTIMENT_API_URL=$SENTIMENT_API_URL is not an http(s) URL"
ENDPOINT=${HF_ENDPOINT:-https://huggingface.co}
if [[ "$SENTIMENT_MODEL_REPO" =~ ^https?:// ]]; then
  MODEL_URL=$SENTIMENT_MODEL_REPO
elif [[ "$SENTIMENT_MODEL_REPO" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
  MODEL_URL="${ENDPOINT%/}/$SENTIMENT_MODEL_REPO/resolve/main/"
else
  fail "SENTIMENT_MODEL_REPO=$SENTIMENT_MODEL_REPO is neither a Hub repo id (OWNER/NAME) nor an http(s) URL"
fi
[[ -f "$DIST/index.html" ]] || fail "$DIST/index.html is missing: build the page first (trunk build --release)"

rm -rf "$OUT"
mkdir -p "$OUT"
cp -r "$DIST/." "$OUT/"
python3 - "$OUT/index.html" "$MODEL_URL" "${SENTIMENT_API_URL%/}" <<'PY'
import html, re, sys
path, model, api = sys.argv[1:]
page = open(path, encoding="utf-8").read()
for name, value in (("sentiment-model-url", model), ("sentiment-api-url", api)):
    tag = re.compile(r'<meta name="%s" content="[^"]*"\s*/?>' % name)
    if len(tag.findall(page)) != 1:
        sys.exit(f"::error::{path} has no single <meta name=\"{name}\"> tag to fill")
    page = tag.sub(f'<meta name="{name}" content="{html.escape(value, quote=True)}" />', page)
open(path, "w", encoding="utf-8").write(page)
PY

MODELS=
[[ "$SENTIMENT_MODEL_REPO" =~ ^https?:// ]] || MODELS=$'models:\n  - '"$SENTIMENT_MODEL_REPO"$'\n'
DATASETS=
[[ -z "${SENTIMENT_DATASET:-}" ]] || DATASETS=$'datasets:\n  - '"$SENTIMENT_DATASET"$'\n'
cat >"$OUT/README.md" <<README
---
title: Sentiment Monitor
emoji: 💬
colorFrom: blue
colorTo: green
sdk: static
app_file: index.html
pinned: false
${MODELS}${DATASETS}custom_headers:
  cross-origin-embedder-policy: require-corp
  cross-origin-opener-policy: same-origin
  cross-origin-resource-policy: cross-origin
---

Sentiment Monitor: the sentiment of social-media posts, classified in your browser (Rust, candle,
wasm). Model: $MODEL_URL — feedback goes to ${SENTIMENT_API_URL%/}.
README
echo "Assembled the static Space in $OUT: model $MODEL_URL, feedback API ${SENTIMENT_API_URL%/}"
