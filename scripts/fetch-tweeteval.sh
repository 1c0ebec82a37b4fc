#!/usr/bin/env bash
# Downloads the TweetEval sentiment splits the nightly run needs (the fixed gold test set and the
# base training data for replay) into DIR (default data/tweeteval), as X_text.txt + X_labels.txt
# pairs, and checks that each pair has matching line counts. TWEETEVAL_BASE points elsewhere
# (a mirror); the default is the TweetEval repository on GitHub.
set -euo pipefail
DIR=${1:-data/tweeteval}
BASE=${TWEETEVAL_BASE:-https://raw.githubusercontent.com/cardiffnlp/tweeteval/main/datasets/sentiment}
mkdir -p "$DIR"
for split in train val test; do
  for part in text labels; do
    f=${split}_${part}.txt
    if [ ! -s "$DIR/$f" ]; then
      curl -fsSL --retry 3 "$BASE/$f" -o "$DIR/$f.tmp"
      mv "$DIR/$f.tmp" "$DIR/$f"
    fi
  done
  t=$(wc -l < "$DIR/${split}_text.txt"); l=$(wc -l < "$DIR/${split}_labels.txt")
  [ "$t" -eq "$l" ] || { echo "$DIR/${split}: $t texts but $l labels" >&2; exit 1; }
  echo "$split: $t examples"
done
