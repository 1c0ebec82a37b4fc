#!/usr/bin/env bash
# Native inference benchmark, next to its peers measured in the same run:
#   1. PyTorch fp32 / dynamic int8 and ONNX Runtime fp32 / dynamic int8 (bench_peers.py from the
#      team share's tools, in the Python reference venv) on the full-size roberta-base shape;
#   2. our bundles (q8_0, q4k, f32) imported from the same checkpoint;
# then prints one table with the ratios. 2 threads everywhere. Then, because the peers above ran
# minutes before ours, it times q4k and q8_0 against ONNX Runtime int8 again in turns, shape by
# shape (scripts/bench_turns.py; TURNS=rounds, default 3, 0 to skip): the ratios to judge by.
#
#   REF_PY=/tmp/refvenv/bin/python CHECKPOINT=/tmp/ref_fixtures_big/roberta-base-random scripts/bench-native.sh
#
# The venv and the checkpoint come from ../shared/tools/ref (README there: make_fixtures.py).
# Results land in target/bench/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REF_PY=${REF_PY:-/tmp/refvenv/bin/python}
CHECKPOINT=${CHECKPOINT:-/tmp/ref_fixtures_big/roberta-base-random}
SHARED=${SHARED:-../shared}
OUT=$PWD/target/bench
mkdir -p "$OUT"
export RAYON_NUM_THREADS=2

cargo build --release -p sentiment-trainer
TRAINER=${CARGO_TARGET_DIR:-target}/release/sentiment-trainer
for q in q8_0 q4k f32; do
  if [ ! -f "$OUT/roberta-$q/manifest.json" ]; then
    /usr/bin/time -f "import $q: peak RSS %M KB, %e s" \
      "$TRAINER" import --from "$CHECKPOINT" --quant "$q" --out "$OUT/roberta-$q"
  fi
done

if [ -n "${REUSE_PEERS:-}" ] && [ -f "$OUT/peers.json" ]; then
  echo "reusing $OUT/peers.json (REUSE_PEERS set)"
elif [ -x "$REF_PY" ]; then
  "$REF_PY" "$SHARED/tools/ref/bench_peers.py" --models roberta --roberta-dir "$CHECKPOINT" \
    --threads 2 --work "$OUT/peers" --out "$OUT/peers.json"
else
  echo "no Python reference venv at $REF_PY: peers skipped" >&2
fi

BENCH_BUNDLES="q8_0=$OUT/roberta-q8_0,q4k=$OUT/roberta-q4k,f32=$OUT/roberta-f32" BENCH_OUT="$OUT/native.json" \
  cargo bench -p sentiment-trainer --bench native_predict

python3 - "$OUT/native.json" "$OUT/peers.json" <<'PY'
import json, os, sys
native = json.load(open(sys.argv[1]))
peers = {}
if os.path.exists(sys.argv[2]):
    for c in json.load(open(sys.argv[2]))["models"]["roberta"]["cells"]:
        peers[(c["batch"], c["seq"])] = {k: v["median_ms"] for k, v in c.items() if isinstance(v, dict)}
rows = {}
for c in native:
    rows.setdefault((c["batch"], c["seq"]), {})[c["bundle"]] = c["median_ms"]
print("\n| batch × seq | candle q8_0 | candle q4k | candle f32 | torch fp32 | torch int8 | ORT fp32 | ORT int8 | q8_0 vs torch fp32 | q8_0 vs ORT int8 | q4k vs torch fp32 | q4k vs ORT int8 |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (b, s), ours in sorted(rows.items()):
    p = peers.get((b, s), {})
    f = lambda v: f"{v:.1f}" if v is not None else "–"
    r = lambda a, b: f"{a / b:.2f}×" if a and b else "–"
    print(f"| {b} × {s} | {f(ours.get('q8_0'))} | {f(ours.get('q4k'))} | {f(ours.get('f32'))} | "
          f"{f(p.get('torch_fp32'))} | {f(p.get('torch_int8'))} | {f(p.get('ort_fp32'))} | {f(p.get('ort_int8'))} | "
          f"{r(ours.get('q8_0'), p.get('torch_fp32'))} | {r(ours.get('q8_0'), p.get('ort_int8'))} | "
          f"{r(ours.get('q4k'), p.get('torch_fp32'))} | {r(ours.get('q4k'), p.get('ort_int8'))} |")
print("\nratios are time ratios: below 1× means candle is faster")
PY
for q in q8_0 q4k f32; do ls -l "$OUT/roberta-$q/model.gguf"; done

TURNS=${TURNS:-3}
if [ "$TURNS" -gt 0 ] && [ -x "$REF_PY" ] && [ -f "$OUT/peers/roberta_int8.onnx" ]; then
  python3 scripts/bench_turns.py --ort-python "$REF_PY" --onnx "$OUT/peers/roberta_int8.onnx" \
    --bundles "q4k=$OUT/roberta-q4k,q8_0=$OUT/roberta-q8_0" --rounds "$TURNS" --out "$OUT/turns.json"
fi
