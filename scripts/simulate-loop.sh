#!/usr/bin/env bash
# Issue 5, acceptance 4 and 5 shown end to end: the retraining loop over several "nights" with
# the real server, trainer and model store (see scripts/simulate_loop.py). ~2 min on 2 cores
# (4.6 min with the build, on a loaded machine).
# Writes target/simulation/report.md (and every night's nightly report under it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p sentiment-trainer -p sentiment-server
exec python3 scripts/simulate_loop.py
