#!/usr/bin/env python3
"""Checks that every command the nightly workflow runs is written, verbatim, in the
retraining loop's documentation, docs/loop.md (issue 5: "the nightly workflow calls exactly the
commands the README documents"; the README links there)."""
import re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
workflow = (root / ".github/workflows/nightly.yml").read_text()
docs = (root / "docs/loop.md").read_text()
commands = [m.strip() for m in re.findall(r"^\s+run: (.+)$", workflow, re.M)]
missing = [c for c in commands if c not in docs]
if not commands or missing:
    sys.exit(f"nightly.yml runs commands docs/loop.md does not show: {missing or 'none found'}")
print(f"nightly.yml: all {len(commands)} commands are in docs/loop.md")
