#!/usr/bin/env bash
# Writes chromedriver capabilities for the wasm-bindgen-test runs in Chromium: e2e/webdriver.json
# with extra Chromium arguments appended, e.g.
#   scripts/webdriver-caps.sh /tmp/caps.json --js-flags=--no-enable-avx-vnni
# then WASM_BINDGEN_TEST_WEBDRIVER_JSON=/tmp/caps.json (scripts/test-wasm-kernels.sh and
# scripts/bench-wasm-kernels.sh use it to run V8 without its AVX-VNNI path).
set -euo pipefail
out=$1
shift
python3 - "$(dirname "${BASH_SOURCE[0]}")/../e2e/webdriver.json" "$out" "$@" <<'PY'
import json, sys
base, out, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
caps = json.load(open(base))
caps["goog:chromeOptions"]["args"].extend(extra)
json.dump(caps, open(out, "w"))
PY
