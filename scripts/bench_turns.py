"""Times our quantized bundles and ONNX Runtime int8 in turns, shape by shape, and prints their
time ratios. scripts/bench-native.sh runs it after the block-by-block table.

On a shared VM both sides drift by 20-40 % over minutes, so a peer timed minutes before us
makes the ratio a lottery. Here each round times every (batch, seq) cell on both sides within
seconds of each other (who goes first alternates between rounds), and the table gives each
round's ratio and their median.

  python3 scripts/bench_turns.py --ort-python /tmp/refvenv/bin/python \
      --onnx target/bench/peers/roberta_int8.onnx \
      --bundles q4k=target/bench/roberta-q4k,q8_0=target/bench/roberta-q8_0 --out target/bench/turns.json

Plain Python 3; ONNX Runtime runs in --ort-python (scripts/ort_int8_cell.py), ours in the
`native_predict` bench (cargo).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOAL = 1.5


def ort_cell(args, b, s):
    out = subprocess.run([args.ort_python, os.path.join(HERE, "ort_int8_cell.py"), "--onnx", args.onnx,
                          "--batch", str(b), "--seq", str(s), "--threads", str(args.threads),
                          "--budget-s", str(args.budget_s)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def native_cell(args, b, s):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        env = dict(os.environ, BENCH_BUNDLES=args.bundles, BENCH_BATCHES=str(b), BENCH_SEQS=str(s),
                   BENCH_BUDGET_S=str(args.budget_s), BENCH_OUT=f.name, RAYON_NUM_THREADS=str(args.threads))
        run = subprocess.run(["cargo", "bench", "-q", "-p", "sentiment-trainer", "--bench", "native_predict"],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"native_predict failed:\n{run.stderr}")
        return {c["bundle"]: c["median_ms"] for c in json.load(open(f.name))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ort-python", required=True, help="a Python with onnxruntime and numpy")
    ap.add_argument("--onnx", required=True, help="the int8 ONNX export (bench_peers.py's --work folder)")
    ap.add_argument("--bundles", required=True, help="name=dir[,name=dir...], as BENCH_BUNDLES")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--seqs", default="16,64,128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=3.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    # cargo runs the bench in backend/trainer/: the folders must not depend on our working directory.
    specs = [spec.split("=", 1) for spec in args.bundles.split(",")]
    args.bundles = ",".join(f"{name}={os.path.abspath(path)}" for name, path in specs)
    args.onnx = os.path.abspath(args.onnx)
    names = [name for name, _ in specs]
    shapes = [(int(b), int(s)) for b in args.batches.split(",") for s in args.seqs.split(",")]

    runs = {shape: [] for shape in shapes}  # per shape: one {"ort": ms, name: ms, ...} per round
    for r in range(args.rounds):
        for b, s in shapes:
            if r % 2 == 0:
                ort = ort_cell(args, b, s)
                ours = native_cell(args, b, s)
            else:
                ours = native_cell(args, b, s)
                ort = ort_cell(args, b, s)
            runs[(b, s)].append(dict(ours, ort=ort))
            print(f"round {r + 1}, {b} × {s}: ORT int8 {ort:.1f} ms, "
                  + ", ".join(f"{n} {ours[n]:.1f} ms ({ours[n] / ort:.2f}×)" for n in names),
                  file=sys.stderr, flush=True)

    print(f"\nIn turns, {args.rounds} rounds, {args.threads} threads: median ms, and our time / ORT int8's time "
          "in each round (median of rounds in bold)\n")
    print("| batch × seq | ORT int8 | " + " | ".join(f"{n} | {n} / ORT int8" for n in names) + " |")
    print("|---|---|" + "---|---|" * len(names))
    summary = []
    for (b, s), rounds in runs.items():
        cells = [f"{b} × {s}", f"{statistics.median(x['ort'] for x in rounds):.1f}"]
        row = {"batch": b, "seq": s, "rounds": rounds}
        for n in names:
            ratios = [x[n] / x["ort"] for x in rounds]
            row[f"{n}_ratio_median"] = statistics.median(ratios)
            cells += [f"{statistics.median(x[n] for x in rounds):.1f}",
                      f"**{statistics.median(ratios):.2f}×** (" + " / ".join(f"{q:.2f}" for q in ratios) + ")"]
        summary.append(row)
        print("| " + " | ".join(cells) + " |")
    for n in names:
        worst = max(row[f"{n}_ratio_median"] for row in summary)
        verdict = "within" if worst <= GOAL else "not within"
        print(f"\n{n}: worst shape {worst:.2f}× ORT int8 (median of rounds): {verdict} the {GOAL}× goal")
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
