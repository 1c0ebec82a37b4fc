#!/usr/bin/env python3
"""Builds the gold-set stand-in used on machines without the TweetEval test split.

The production gold set is TweetEval sentiment *test* (SemEval-2017 test), which the team share
does not hold. SemEval-2016 `twitter-2016devtest-A.txt` (2,000 tweets) is the stand-in: TweetEval
used none of it, so it is in neither TweetEval train, validation nor test. Its tweets are passed
through TweetEval's text transform (below) and written as a TweetEval pair, `test_text.txt` +
`test_labels.txt` (0 negative, 1 neutral, 2 positive), which `sentiment-trainer eval` and the
nightly config's `gold_test` read like the real thing.

The transform, as TweetEval applied it: split on single spaces; drop a token that starts with
`http`, and replace one that starts with `@` and has at least one more character by `@user`
(both after one optional leading `"`, which goes with the token); join with single spaces and
append one space. Before writing anything the script checks the transform: applied to the other
SemEval-2013..2016 files it must reproduce every line of TweetEval validation byte for byte.
Tweets whose transformed text is also in TweetEval train or validation (13: copies of the same
tweet in other SemEval files) are left out, so 1,987 remain.

Usage: scripts/make-gold-standin.py [OUT_DIR]   (default target/data/gold-standin; stdlib only)
Needs ../shared/data (semeval2017-task4a, tweeteval-sentiment, tweeteval-sentiment-train-rebuilt)
or SHARE=<dir holding data/>.
"""
import glob
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARE = Path(os.environ.get("SHARE", ROOT.parent / "shared")) / "data"
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "data" / "gold-standin"
SOURCE = SHARE / "semeval2017-task4a" / "twitter-2016devtest-A.txt"
LABEL_IDS = {"negative": "0", "neutral": "1", "positive": "2"}


def tweeteval_transform(text: str) -> str:
    out = []
    for token in text.split(" "):
        bare = token[1:] if token.startswith('"') else token
        if bare.startswith("http"):
            continue
        out.append("@user" if bare.startswith("@") and len(bare) > 1 else token)
    return " ".join(out) + " "


def semeval_rows(path: Path):
    """(label, raw text) per row; a row split by a newline inside a tweet is skipped."""
    for line in path.read_text(encoding="utf-8").split("\n"):
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1] in LABEL_IDS:
            yield parts[1], parts[2]


def lines(path: Path) -> list:
    return [l for l in path.read_text(encoding="utf-8").split("\n") if l]


def main():
    for p in (SOURCE, SHARE / "tweeteval-sentiment" / "val_text.txt"):
        if not p.exists():
            sys.exit(f"{p} is missing: this script needs the team share (../shared/data, or SHARE=...)")
    val = set(lines(SHARE / "tweeteval-sentiment" / "val_text.txt"))
    train = set(lines(SHARE / "tweeteval-sentiment-train-rebuilt" / "train_text.txt"))

    # The transform must reproduce TweetEval validation from the SemEval files it came from.
    reproduced = set()
    for f in sorted(glob.glob(str(SHARE / "semeval2017-task4a" / "twitter-201*-A.txt"))):
        if Path(f) == SOURCE:
            continue
        reproduced.update(t for _, raw in semeval_rows(Path(f)) if (t := tweeteval_transform(raw)) in val)
    if reproduced != val:
        sys.exit(f"the transform reproduces {len(reproduced)} of {len(val)} validation lines; it is not TweetEval's")

    rows = [(label, tweeteval_transform(raw)) for label, raw in semeval_rows(SOURCE)]
    if len(rows) != 2000:
        sys.exit(f"{SOURCE}: {len(rows)} rows, expected 2000")
    # A few tweets were posted again (retweets, copies) and reached other SemEval files, so their
    # transformed text is in TweetEval train: a gold set must not hold what was trained on.
    rows_all = len(rows)
    rows = [(label, t) for label, t in rows if t not in val and t not in train]
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in (("test_text.txt", [t for _, t in rows]), ("test_labels.txt", [LABEL_IDS[l] for l, _ in rows])):
        tmp = OUT / (name + ".tmp")
        tmp.write_text("\n".join(content) + "\n", encoding="utf-8")
        tmp.replace(OUT / name)
    counts = {l: sum(1 for r, _ in rows if r == l) for l in LABEL_IDS}
    print(f"{OUT / 'test_text.txt'}: {len(rows)} tweets ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
          f"{rows_all - len(rows)} left out as they are in TweetEval train or validation; "
          f"the transform reproduces all {len(val)} TweetEval validation lines")


if __name__ == "__main__":
    main()
