#!/usr/bin/env python3
"""Checks that every command the nightly workflow runs is written, verbatim, in the README
(issue 5: "the nightly workflow calls exactly the commands the README documents")."""
import re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
workflow = (root / ".github/workflows/nightly.yml").read_text()
readme = (root / "README.md").read_text()
commands = [m.strip() for m in re.findall(r"^\s+run: (.+)$", workflow, re.M)]
missing = [c for c in commands if c not in readme]
if not commands or missing:
    sys.exit(f"nightly.yml runs commands the README does not show: {missing or 'none found'}")
print(f"nightly.yml: all {len(commands)} commands are in the README")
