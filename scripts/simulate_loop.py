#!/usr/bin/env python3
"""The retraining loop, simulated end to end with the project's real pieces (stdlib only).

A champion (the tiny RoBERTa fine-tuned on the synthetic base domain) is published to a local
model store and served by `sentiment-server`. Users then post in a shifted domain (slang the
champion never saw, fixtures/synthetic-sentiment/shifted.jsonl): each night a chunk of posts is
classified by the current champion (`sentiment-trainer predict`), labelled feedback is POSTed to
the server's /api/feedback, and `sentiment-trainer nightly` runs on the server's feedback store.
Users post from many addresses (the server trusts one proxy hop from loopback, so each simulated
user's X-Forwarded-For gives it its own pseudonymous client key); one night, one client (one
address, a fresh record id each time) flips 30 % of the labels. The simulation writes report.md / report.json:
per night, the monitor's figures and decision, what was promoted or rejected and why, and each
champion's accuracy on the gold set and the shifted data. It fails (exit 1) if the loop breaks
its promises: no promotion at all, a promotion that loses more than 0.5 pp on the gold set, or a
lying night whose lies get through: the liar not capped, or a promotion that serves a model
agreeing more with the lies, or less with the truth on the shifted domain, than the one before
(the defences keep the lies out of training and judging, so the honest rest of the night may
still promote: that is the loop working; tests/nightly.rs isolates each defence);
and if the shifted domain stops reproducing issue 30: on a promoting night, the plain fine-tune
(last epoch, no blending: the old recipe) must lose more than 0.5 pp on gold.

Usage: scripts/simulate-loop.sh (builds the binaries, then runs this).
"""
import json, os, random, shutil, subprocess, sys, uuid
from pathlib import Path

from loop_pieces import ROOT, TRAINER, evaluate, jsonl, post, predict, server, sh

DATA = ROOT / "fixtures" / "synthetic-sentiment"
OUT = Path(os.environ.get("SIM_OUT", ROOT / "target" / "simulation"))
CHUNK = 500
FLIP_NIGHT = 4          # the night one client lies
FLIP_SHARE = 0.30
USERS = 100             # honest users, each with its own address (and so its own client key)
LIAR = "192.0.2.66"     # the lying client's one address
MAX_GOLD_LOSS = 0.005
# Fixed, so that the client keys, and so the trainer's split by client, are the same on every run.
CLIENT_KEY_SECRET = "simulate-loop-fixed-client-key-secret"
# How much more the champion served after the lying night may agree with the lies on the liar's
# posts than the one before (3 of the ~170 posts): a model that learnt them would agree far more.
MAX_LIE_GAIN = 0.02

def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    store, fb_dir, reports = OUT / "store", OUT / "server-data", OUT / "nightly-reports"
    gold, shifted = DATA / "gold.jsonl", DATA / "shifted.jsonl"

    print("==> champion: the tiny RoBERTa fine-tuned on the base domain")
    sh(TRAINER, "train", "--base", ROOT / "fixtures" / "tiny-roberta-bpe", "--data", DATA / "base-train.jsonl",
       "--out", OUT / "base-checkpoint", "--epochs", "10", "--lr", "2e-3", "--batch-size", "16", "--preprocess", "none")
    sh(TRAINER, "import", "--from", OUT / "base-checkpoint", "--quant", "q8_0", "--preprocess", "none",
       "--version", "v1-base", "--out", OUT / "v1-base")
    sh(TRAINER, "publish", "--bundle", OUT / "v1-base", "--to", store, "--checkpoint", OUT / "base-checkpoint")
    (OUT / "nightly.toml").write_text(f"""registry = "store"
feedback = "server-data"
gold_test = "{gold}"
guard_set = "{DATA / 'guard.jsonl'}"
replay_data = "{DATA / 'base-train.jsonl'}"
report_dir = "nightly-reports"
[monitor]
min_samples = 150
baseline = 0.80
[gate]
# The shifted domain holds 3,000 posts, so the holdout reaches the production minimum (300, for
# the churn of real drift: docs/loop.md) only on the last nights; the z test still applies.
min_holdout = 150
[train]
epochs = 3
lr = 2e-3
batch_size = 16
""")

    with server(fb_dir, store, OUT / "server.log", CLIENT_KEY_SECRET) as base:
        nights = run_nights(base, store, gold, shifted, reports)
    write_report(nights)

def champion_figures(store, gold, shifted):
    m = json.load(open(store / "manifest.json"))
    g, s = evaluate(store, gold), evaluate(store, shifted)
    return {"version": m["version"], "gold_macro_recall": g["macro_recall"], "gold_accuracy": g["accuracy"],
            "shifted_accuracy": s["accuracy"], "shifted_macro_recall": s["macro_recall"]}

def plain_fine_tune_gold(gold):
    """Gold macro recall of the night's plain fine-tune (its last epoch, mixing weight 1: what the
    recipe before issue 30 would have shipped), quantized as the champion is."""
    run = sorted((OUT / "nightly-work").glob("run-*"))[-1]
    out = OUT / f"plain-{run.name}"
    sh(TRAINER, "import", "--from", run / "fine-tune", "--quant", "q8_0", "--preprocess", "none",
       "--version", f"plain-{run.name}", "--out", out)
    return evaluate(out, gold)["macro_recall"]

def run_nights(base, store, gold, shifted, reports):
    posts = jsonl(shifted)
    labels = ["negative", "neutral", "positive"]
    rng = random.Random(7)
    nights = []
    before = champion_figures(store, gold, shifted)
    for night, start in enumerate(range(0, len(posts), CHUNK), 1):
        chunk = posts[start:start + CHUNK]
        version = json.load(open(store / "manifest.json"))["version"]
        preds = predict(store, [p["text"] for p in chunk])
        lies = []
        for p, pred in zip(chunk, preds):
            label, client = p["label"], f"198.51.100.{rng.randrange(USERS)}"
            if night == FLIP_NIGHT and rng.random() < FLIP_SHARE:   # one lying client
                label, client = labels[(labels.index(label) + 1) % 3], LIAR
                lies.append({"text": p["text"], "label": label})
            status = post(base + "/api/feedback", {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "text": p["text"],
                "predicted": pred["label"], "scores": pred["scores"], "label": label, "model_version": version},
                client)
            assert status in (200, 201), status
        lies_file = OUT / f"night-{night}-lies.jsonl"
        if lies:   # how often each champion says what the liar said, on the liar's posts
            lies_file.write_text("".join(json.dumps(l) + "\n" for l in lies))
            before = dict(before, lie_agreement=evaluate(store, lies_file)["accuracy"])
        before_reports = set(reports.glob("*.json")) if reports.exists() else set()
        r = subprocess.run([TRAINER, "nightly", "--config", OUT / "nightly.toml"], capture_output=True, text=True)
        new = sorted(set(reports.glob("*.json")) - before_reports)
        if r.returncode != 0 or not new:
            sys.exit(f"night {night}: nightly failed: {r.stderr.strip() or r.stdout.strip()}")
        rep = json.load(open(new[-1]))
        after = champion_figures(store, gold, shifted)
        plain = plain_fine_tune_gold(gold) if rep["outcome"] == "promoted" else None
        if lies:
            after["lie_agreement"] = evaluate(store, lies_file)["accuracy"]
        nights.append({"night": night, "posts": len(chunk), "flipped": len(lies), "champion_before": before,
                       "champion_after": after, "plain_fine_tune_gold_macro_recall": plain,
                       "report": rep, "report_file": str(new[-1].relative_to(OUT))})
        m = rep.get("monitor") or {}
        print(f"night {night}: {version} agreement {m.get('accuracy')} n={m.get('n')} → {rep['outcome']}: {rep['reason'][:120]}")
        before = after
    return nights

def pct(x):
    return "—" if x is None else f"{100 * x:.1f} %"

def write_report(nights):
    lines = ["# Retraining loop simulation", "",
             "Champion: the tiny RoBERTa fine-tuned on the synthetic base domain; feedback: the shifted",
             f"domain in chunks of {CHUNK} posts, all labelled; night {FLIP_NIGHT}: one client flips "
             f"{int(FLIP_SHARE * 100)} % of the labels. Accuracy figures are the served champion's, measured",
             "after each night with `sentiment-trainer eval` (gold: fixed base-domain test set).", "",
             "| night | champion | feedback n | agreement (95 % CI) | monitor | outcome | new champion | gold macro recall | shifted accuracy | plain fine-tune's gold macro recall |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in nights:
        r, m = n["report"], n["report"].get("monitor") or {}
        ci = f"{pct(m.get('accuracy'))} ({pct(m.get('ci_low'))}–{pct(m.get('ci_high'))})" if m.get("n") else "—"
        b, a = n["champion_before"], n["champion_after"]
        lines.append(f"| {n['night']}{' (30 % flipped)' if n['flipped'] else ''} | {b['version']} | {m.get('n', '—')} | {ci} | "
                     f"{m.get('decision', '—')} | {r['outcome']} | {r.get('new_champion') or '—'} | "
                     f"{pct(b['gold_macro_recall'])} → {pct(a['gold_macro_recall'])} | "
                     f"{pct(b['shifted_accuracy'])} → {pct(a['shifted_accuracy'])} | "
                     f"{pct(n['plain_fine_tune_gold_macro_recall'])} |")
    lines += ["", "## Why", ""]
    for n in nights:
        d = n["report"].get("data") or {}
        clients = (f" Clients: {d['clients']}, the largest sent {100 * d['largest_client_share']:.1f} % of the votes; "
                   f"cap {d['client_cap']} votes a client, {d['records_capped']} records capped."
                   if "clients" in d else "")
        lines.append(f"- night {n['night']}: **{n['report']['outcome']}** — {n['report']['reason']}{clients} "
                     f"([report]({n['report_file'].replace('.json', '.md')}))")
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    (OUT / "report.json").write_text(json.dumps(nights, indent=1))
    print("\n".join(lines))
    lying = [n for n in nights if n["flipped"]]
    lies_got_through = []
    for n in lying:
        d, b, a = n["report"].get("data") or {}, n["champion_before"], n["champion_after"]
        print(f"night {n['night']} (one client lying on {n['flipped']} posts): {d.get('clients')} clients, "
              f"the largest sent {100 * d.get('largest_client_share', 0):.1f} % of the votes, cap {d.get('client_cap')}: "
              f"{d.get('records_capped')} records capped; outcome {n['report']['outcome']}; the served champion "
              f"agrees with the lies on {pct(b['lie_agreement'])} → {pct(a['lie_agreement'])} of the liar's posts, "
              f"shifted accuracy {pct(b['shifted_accuracy'])} → {pct(a['shifted_accuracy'])}")
        if not d.get("records_capped"):
            lies_got_through.append(f"night {n['night']}: the liar was not capped")
        if n["report"]["outcome"] == "promoted" and (a["lie_agreement"] > b["lie_agreement"] + MAX_LIE_GAIN
                                                     or a["shifted_accuracy"] < b["shifted_accuracy"]):
            lies_got_through.append(f"night {n['night']}: the promoted champion learnt the lies")
    if lies_got_through:
        sys.exit("; ".join(lies_got_through))
    promoted = [n for n in nights if n["report"]["outcome"] == "promoted"]
    worse = [n for n in promoted
             if n["champion_after"]["gold_macro_recall"] < n["champion_before"]["gold_macro_recall"] - MAX_GOLD_LOSS]
    if not promoted:
        sys.exit("the loop never promoted a challenger")
    if worse:
        sys.exit(f"promotions lost more than {MAX_GOLD_LOSS * 100} pp on gold: nights {[n['night'] for n in worse]}")
    # Issue 30: the shifted domain must make a plain fine-tune forget the base domain, as real
    # drift does, so that a recipe that cannot adapt without forgetting fails here too.
    old_recipe_fails = [n for n in promoted if n["plain_fine_tune_gold_macro_recall"]
                        < n["champion_before"]["gold_macro_recall"] - MAX_GOLD_LOSS]
    for n in promoted:
        print(f"night {n['night']}: the plain fine-tune's gold macro recall "
              f"{pct(n['plain_fine_tune_gold_macro_recall'])} against the champion's "
              f"{pct(n['champion_before']['gold_macro_recall'])}; the promoted blend's {pct(n['champion_after']['gold_macro_recall'])}")
    if not old_recipe_fails:
        sys.exit("no promoting night where the plain fine-tune would have lost more than "
                 f"{MAX_GOLD_LOSS * 100} pp on gold: the shifted domain no longer reproduces issue 30")
    print(f"\n{len(promoted)} promotion(s), none worse on gold; report: {OUT / 'report.md'}")

if __name__ == "__main__":
    main()
