#!/usr/bin/env python3
"""Compares retraining recipes on one night's feedback (stdlib only; slow: not in CI).

Takes a nightly run folder (`work_dir/run-<time>/` of a run that retrained: the champion's float
checkpoint and the feedback split into training, validation and holdout) and, for each recipe
(epochs, learning rate, replay ratio, L2-SP strength), fine-tunes the champion with
`sentiment-trainer train` as `nightly` does, then scores every candidate — each epoch's
checkpoint blended with the champion at each mixing weight (`sentiment-trainer interpolate`),
imported at q8_0 as nightly scores candidates — on the guard set, the feedback validation split, the holdout, the gold set and any
extra test sets. It then applies nightly's selection rule (best feedback-validation accuracy
among candidates losing at most the guard budget in macro recall on the guard set) and prints
what each recipe would have shipped. Only the guard set and the validation split drive that
choice; the other columns are there to see whether the choice holds up.

Usage (figures in docs/retraining.md):
  scripts/compare_recipes.py --run-dir RUN --guard VAL_TEXT --gold GOLD_TEXT --replay TRAIN_TEXT \\
      [--test airline=PATH.jsonl] [--weights 0.25,0.5,0.75,1] [--budget 0.0025] \\
      --recipe "production epochs=2 lr=3e-5 replay_ratio=1" --recipe "..." [--out DIR]
  env: TRAINER (default target/release/sentiment-trainer), THREADS (default 2)
A run folder from before the validation split (feedback-train.jsonl and feedback-holdout.jsonl
only) is split again by nightly's rule (record-id hash in [0.2, 0.35) → validation).
"""
import argparse, hashlib, json, os, shutil, time
from pathlib import Path

from loop_pieces import ROOT, TRAINER, figures, jsonl, sh

THREADS = os.environ.get("THREADS", "2")
TRAIN_DEFAULTS = {"epochs": 2, "lr": 3e-5, "replay_ratio": 1.0, "l2sp": 0.0}


def holdout_hash(record_id):
    """nightly's `feedback_data::holdout_hash`: a number in [0, 1) from the id."""
    x = int.from_bytes(hashlib.sha256(record_id.lower().encode()).digest()[:8], "big")
    return (x >> 11) / float(1 << 53)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", required=True, type=Path)
    ap.add_argument("--guard", required=True, type=Path)
    ap.add_argument("--gold", required=True, type=Path)
    ap.add_argument("--replay", required=True, type=Path)
    ap.add_argument("--test", action="append", default=[], help="NAME=PATH, scored for every candidate")
    ap.add_argument("--recipe", action="append", required=True, help='"NAME key=value ..." (epochs, lr, replay_ratio, l2sp)')
    ap.add_argument("--weights", default="0.25,0.5,0.75,1")
    ap.add_argument("--budget", type=float, default=0.0025, help="guard macro recall a candidate may lose")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "compare-recipes")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    weights = sorted({float(w) for w in a.weights.split(",")} | {1.0})

    champion = a.run_dir / "champion" / "checkpoint"
    preprocess = json.load(open(a.run_dir / "champion" / "bundle" / "manifest.json"))["preprocessing"]
    train = jsonl(a.run_dir / "feedback-train.jsonl")
    if (a.run_dir / "feedback-validation.jsonl").exists():
        validation = jsonl(a.run_dir / "feedback-validation.jsonl")
    else:
        validation = [r for r in train if holdout_hash(r["id"]) < 0.35]
        train = [r for r in train if holdout_hash(r["id"]) >= 0.35]
    write_jsonl(a.out / "train.jsonl", train)
    write_jsonl(a.out / "validation.jsonl", validation)
    write_jsonl(a.out / "holdout.jsonl", jsonl(a.run_dir / "feedback-holdout.jsonl"))
    sets = {"guard": a.guard, "validation": a.out / "validation.jsonl", "holdout": a.out / "holdout.jsonl",
            "gold": a.gold}
    sets.update(dict(t.split("=", 1) for t in a.test))
    print(f"{len(train)} training, {len(validation)} validation texts; sets: {', '.join(sets)}", flush=True)

    results_path = a.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if "champion" not in results:
        sh(TRAINER, "import", "--from", champion, "--quant", "q8_0", "--preprocess", preprocess,
           "--out", a.out / "champion-q8_0")
        results["champion"] = {k: figures(a.out / "champion-q8_0", p) for k, p in sets.items()}
        results_path.write_text(json.dumps(results, indent=1))
    for spec in a.recipe:
        name, *kv = spec.split()
        opts = dict(TRAIN_DEFAULTS, **{k: float(v) for k, v in (x.split("=") for x in kv)})
        opts["epochs"] = int(opts["epochs"])
        if name in results and results[name].get("opts") == opts:
            continue
        ft = a.out / name / "fine-tune"
        started = time.monotonic()
        sh(TRAINER, "train", "--base", champion, "--data", a.out / "train.jsonl", "--replay", a.replay,
           "--replay-ratio", opts["replay_ratio"], "--epochs", opts["epochs"], "--lr", opts["lr"],
           "--l2sp", opts["l2sp"], "--batch-size", 32, "--max-len", 64, "--seed", 0, "--preprocess", preprocess,
           "--keep-epoch-checkpoints", "--threads", THREADS, "--out", ft)
        train_s = time.monotonic() - started
        candidates = []
        for epoch in range(1, opts["epochs"] + 1):
            tuned = ft if epoch == opts["epochs"] else ft / f"epoch-{epoch}"
            for w in weights:
                mixed = a.out / name / "candidate"
                sh(TRAINER, "interpolate", "--from", champion, "--to", tuned, "--weight", w, "--out", mixed)
                sh(TRAINER, "import", "--from", mixed, "--quant", "q8_0", "--preprocess", preprocess,
                   "--out", mixed / "q8_0")
                figs = {k: figures(mixed / "q8_0", p) for k, p in sets.items()}
                candidates.append({"epoch": epoch, "mixing_weight": w, **figs})
                print(f"{name} epoch {epoch} α {w}: " + ", ".join(
                    f"{k} {v['macro_recall']:.4f}/{v['accuracy']:.4f}" for k, v in figs.items()), flush=True)
                shutil.rmtree(mixed)
        shutil.rmtree(ft)
        results[name] = {"opts": opts, "train_seconds": train_s, "candidates": candidates}
        results_path.write_text(json.dumps(results, indent=1))
    write_table(a, results, weights)


def choose(champion, candidates, budget):
    """nightly's rule: best validation accuracy among those within the guard budget (macro
    recall); ties to the smaller weight, then the earlier epoch; none within: least guard loss."""
    ok = [c for c in candidates if champion["guard"]["macro_recall"] - c["guard"]["macro_recall"] <= budget + 1e-12]
    if ok:
        return max(ok, key=lambda c: (c["validation"]["accuracy"], -c["mixing_weight"], -c["epoch"]))
    return min(candidates, key=lambda c: (champion["guard"]["macro_recall"] - c["guard"]["macro_recall"],
                                         c["mixing_weight"], c["epoch"]))


def write_table(a, results, weights):
    champion = results["champion"]
    names = list(champion)
    pp = lambda c, k, m: f"{100 * (c[k][m] - champion[k][m]):+.2f}"
    head = "| recipe | epoch | α | " + " | ".join(
        f"{k} {'acc.' if k in ('validation', 'holdout') else 'macro rec.'}" for k in names) + " |"
    lines = [f"Champion: " + ", ".join(f"{k} macro recall {100 * v['macro_recall']:.2f} %, accuracy "
                                        f"{100 * v['accuracy']:.2f} %" for k, v in champion.items()), "",
             "Changes against the champion in pp (q8_0 bundles). Accuracy on the feedback sets, macro recall elsewhere.",
             f"**bold**: what nightly's rule picks with a guard budget of {100 * a.budget:.2f} pp.", "", head,
             "|" + "---|" * (3 + len(names))]
    for name, r in results.items():
        if name == "champion":
            continue
        pick = choose(champion, r["candidates"], a.budget)
        for c in r["candidates"]:
            cells = [pp(c, k, "accuracy" if k in ("validation", "holdout") else "macro_recall") for k in names]
            mark = "**" if c is pick else ""
            lines.append(f"| {mark}{name}{mark} | {c['epoch']} | {c['mixing_weight']:.2f} | " + " | ".join(cells) + " |")
        lines.append(f"| {name}: {r['opts']}, training {r['train_seconds']:.0f} s | | | " + " | " * (len(names) - 1) + " |")
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
