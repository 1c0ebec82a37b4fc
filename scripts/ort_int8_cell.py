"""Times ONNX Runtime on one (batch, seq) cell, exactly as ../shared/tools/ref/bench_peers.py does
(same session options, warm-up and stopping rule), and prints one JSON line:
{"batch", "seq", "median_ms", "min_ms", "iters"}.

scripts/bench-native.sh calls it in turns with our native bench, so that both sides of a ratio
are timed within seconds of each other. It needs only onnxruntime and numpy (the reference venv
has both) and the int8 ONNX export that bench_peers.py leaves in its --work folder.

  python scripts/ort_int8_cell.py --onnx target/bench/peers/roberta_int8.onnx --batch 1 --seq 16
"""
import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort


def time_calls(fn, budget_s, min_iters, warmup, max_iters=200):
    for _ in range(warmup):
        fn()
    times = []
    t_start = time.perf_counter()
    while len(times) < max_iters:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= min_iters and time.perf_counter() - t_start > budget_s:
            break
    return statistics.median(times), min(times), len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=3.0)
    args = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])

    ids = np.random.default_rng(0).integers(3, 1000, (args.batch, args.seq), dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in {i.name for i in sess.get_inputs()}:
        feeds["token_type_ids"] = np.zeros_like(ids)
    heavy = args.batch * args.seq >= 2048
    med, mn, n = time_calls(lambda: sess.run(["logits"], feeds), args.budget_s,
                            min_iters=3 if heavy else 5, warmup=1 if heavy else 3)
    print(json.dumps({"batch": args.batch, "seq": args.seq, "median_ms": round(med, 3),
                      "min_ms": round(mn, 3), "iters": n}))


if __name__ == "__main__":
    main()
