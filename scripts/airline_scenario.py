#!/usr/bin/env python3
"""The retraining loop on a real domain shift: airline customer-service tweets (stdlib only).

A champion (e.g. all-MiniLM-L6-v2 fine-tuned on TweetEval, /work/artifacts/minilm-tweeteval) is
published to a fresh local model store and served by `sentiment-server`. Each night, a chunk of
posts from `../shared/data/airline-sentiment/feedback_pool.jsonl` is classified by the champion
being served (`sentiment-trainer predict` on the store's root bundle, as the page does) and the
posts' true labels are POSTed to the server's /api/feedback by simulated users; then
`sentiment-trainer nightly` runs on the server's data directory with the production settings
(`[monitor]`, `[split]`, `[gate]`, `[train]`, `[select]` of the config given, .github/nightly.toml
by default) and the gold set, guard set and replay data given here. After each night the served
champion is scored on the airline test split, TweetEval validation and the gold set.

Writes OUT/report.md and OUT/report.json (default target/airline-scenario), with every night's
nightly report under OUT/nightly-reports. Exit status 1 when a run fails.

The airline data may be used for development and evaluation only: the models this script
promotes live in OUT/store and must never be published anywhere.

Usage (see docs/retraining.md):
  scripts/airline_scenario.py --bundle DIR --checkpoint DIR [--nights 4] [--per-night 2500]
      [--gold DIR/test_text.txt] [--config .github/nightly.toml] [--out DIR]
  env: TRAINER, SERVER (binaries; default target/release/...), SHARE (default ../shared)
"""
import argparse, json, os, random, shutil, subprocess, sys, time, tomllib, uuid
from pathlib import Path

from loop_pieces import ROOT, TRAINER, figures, jsonl, post, predict, server, sh

SHARE = Path(os.environ.get("SHARE", ROOT.parent / "shared")) / "data"
PRODUCTION_SECTIONS = ("monitor", "split", "gate", "train", "select")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {v!r} as TOML")


def scenario_config(production: Path, out: Path, gold: Path, guard: Path, replay: Path) -> Path:
    """The production config's settings with this machine's data and a local store."""
    prod = tomllib.loads(production.read_text())
    lines = [f"# Made by scripts/airline_scenario.py from {production}: its [sections], local paths.",
             'registry = "store"', 'feedback = "server-data"', f"gold_test = {toml_value(str(gold))}",
             f"replay_data = {toml_value(str(replay))}",
             'work_dir = "nightly-work"', 'report_dir = "nightly-reports"', "keep_runs = 2"]
    if "guard_set" in prod:   # (configs from before the guard set have none)
        lines.append(f"guard_set = {toml_value(str(guard))}")
    for section in PRODUCTION_SECTIONS:
        if section in prod:
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in prod[section].items()]
    path = out / "nightly.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True, type=Path, help="the first champion's bundle")
    ap.add_argument("--checkpoint", required=True, type=Path, help="its float checkpoint")
    ap.add_argument("--nights", type=int, default=4)
    ap.add_argument("--per-night", type=int, default=2500)
    ap.add_argument("--users", type=int, default=200, help="simulated users posting feedback")
    ap.add_argument("--config", type=Path, default=ROOT / ".github" / "nightly.toml")
    ap.add_argument("--gold", type=Path, default=ROOT / "target" / "data" / "gold-standin" / "test_text.txt",
                    help="gold set (default: scripts/make-gold-standin.py's output, made if missing)")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "airline-scenario")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    airline = SHARE / "airline-sentiment"
    guard = SHARE / "tweeteval-sentiment" / "val_text.txt"
    replay = SHARE / "tweeteval-sentiment-train-rebuilt" / "train_text.txt"
    for p in (airline / "feedback_pool.jsonl", guard, replay):
        if not p.exists():
            sys.exit(f"{p} is missing: the scenario needs the team share (../shared, or SHARE=...)")
    if not a.gold.exists():
        sh(sys.executable, ROOT / "scripts" / "make-gold-standin.py", a.gold.parent)
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    test = a.out / "airline-test.jsonl"   # text + label only: what `eval` reads
    test.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n"
                            for r in jsonl(airline / "test.jsonl")))
    store, fb_dir = a.out / "store", a.out / "server-data"
    sh(TRAINER, "publish", "--bundle", a.bundle, "--to", store, "--checkpoint", a.checkpoint)
    cfg = scenario_config(a.config, a.out, a.gold.resolve(), guard, replay)

    pool = jsonl(airline / "feedback_pool.jsonl")
    random.Random(a.seed).shuffle(pool)
    need = a.nights * a.per_night
    if need > len(pool):
        sys.exit(f"{a.nights} nights of {a.per_night} posts need {need}; the pool holds {len(pool)}")

    with server(fb_dir, store, a.out / "server.log") as base:
        nights = run_nights(a, base, store, cfg, pool, test, guard)
    write_report(a, nights)


def served_figures(store, test, guard, gold, cache):
    version = json.load(open(store / "manifest.json"))["version"]
    if version not in cache:
        cache[version] = {"version": version, "airline_test": figures(store, test),
                          "tweeteval_val": figures(store, guard), "gold": figures(store, gold)}
    return cache[version]


def run_nights(a, base, store, cfg, pool, test, guard):
    rng = random.Random(a.seed + 1)
    users = [f"10.{i // 250}.{i % 250}.{rng.randrange(1, 250)}" for i in range(a.users)]
    reports = a.out / "nightly-reports"
    cache = {}
    before = served_figures(store, test, guard, a.gold, cache)
    print(f"first champion {before['version']}: airline test macro recall {before['airline_test']['macro_recall']:.4f}, "
          f"TweetEval val {before['tweeteval_val']['macro_recall']:.4f}, gold {before['gold']['macro_recall']:.4f}",
          flush=True)
    nights = []
    for night in range(1, a.nights + 1):
        chunk = pool[(night - 1) * a.per_night: night * a.per_night]
        version = json.load(open(store / "manifest.json"))["version"]
        preds = predict(store, [p["text"] for p in chunk])
        for p, pred in zip(chunk, preds):
            status = post(base + "/api/feedback", {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "text": p["text"],
                "predicted": pred["label"], "scores": pred["scores"], "label": p["label"],
                "model_version": version}, rng.choice(users))
            assert status in (200, 201), status
        seen = set(reports.glob("*.json")) if reports.exists() else set()
        started = time.monotonic()
        r = subprocess.run([TRAINER, "nightly", "--config", cfg], capture_output=True, text=True)
        minutes = (time.monotonic() - started) / 60
        new = sorted(set(reports.glob("*.json")) - seen)
        if r.returncode != 0 or not new:
            sys.exit(f"night {night}: nightly failed: {r.stderr.strip() or r.stdout.strip()}")
        rep = json.load(open(new[-1]))
        after = served_figures(store, test, guard, a.gold, cache)
        nights.append({"night": night, "posts": len(chunk), "feedback_total": night * a.per_night,
                       "nightly_minutes": minutes, "served_before": before, "served_after": after,
                       "report": rep, "report_file": str(new[-1].relative_to(a.out))})
        m = rep.get("monitor") or {}
        print(f"night {night}: {version} agreement {m.get('accuracy')} n={m.get('n')} → {rep['outcome']} "
              f"({minutes:.1f} min): {rep['reason'][:160]}; airline test macro recall "
              f"{after['airline_test']['macro_recall']:.4f}", flush=True)
        before = after
    return nights


def pct(x):
    return "—" if x is None else f"{100 * x:.1f} %"


def write_report(a, nights):
    first = nights[0]["served_before"]
    lines = ["# Airline scenario: the retraining loop on a real domain shift", "",
             f"First champion `{first['version']}`; each night {a.per_night} airline tweets classified by the "
             f"served champion and their true labels posted by {a.users} simulated users; `nightly` with the "
             f"settings of `{a.config.relative_to(ROOT) if a.config.is_relative_to(ROOT) else a.config}`. "
             "Figures of the served champion after each night (q8_0 bundle, `sentiment-trainer eval`): "
             "airline test split (3,626), TweetEval validation (the guard set), gold set "
             f"(`{a.gold.name}` in `{a.gold.parent.name}`).", "",
             "| night | feedback (total) | champion | n | agreement (95 % CI) | monitor | outcome | chosen | "
             "holdout acc. champion → challenger | gold macro recall champion → challenger | "
             "served: airline test macro recall | TweetEval val macro recall | gold macro recall | nightly |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             f"| 0 | — | — | — | — | — | — | — | — | — | {pct(first['airline_test']['macro_recall'])} | "
             f"{pct(first['tweeteval_val']['macro_recall'])} | {pct(first['gold']['macro_recall'])} | — |"]
    for n in nights:
        r, m = n["report"], n["report"].get("monitor") or {}
        ci = f"{pct(m.get('accuracy'))} ({pct(m.get('ci_low'))}–{pct(m.get('ci_high'))})" if m.get("n") else "—"
        e, sel = r.get("evaluations"), r.get("selection")
        chosen = "—"
        if sel:
            c = sel["candidates"][sel["chosen"]]
            chosen = f"epoch {c['epoch']}, α {c['mixing_weight']:.2f}"
        hold = gold = "—"
        if e:
            hold = f"{pct(e['champion_holdout']['accuracy'])} → {pct(e['challenger_holdout']['accuracy'])}"
            gold = f"{pct(e['champion_gold']['macro_recall'])} → {pct(e['challenger_gold']['macro_recall'])}"
        s = n["served_after"]
        lines.append(f"| {n['night']} | {n['posts']} ({n['feedback_total']}) | {n['served_before']['version']} | "
                     f"{m.get('n', '—')} | {ci} | {m.get('decision', '—')} | {r['outcome']} | {chosen} | {hold} | {gold} | "
                     f"{pct(s['airline_test']['macro_recall'])} | {pct(s['tweeteval_val']['macro_recall'])} | "
                     f"{pct(s['gold']['macro_recall'])} | {n['nightly_minutes']:.1f} min |")
    last = nights[-1]["served_after"]
    d = lambda k: 100 * (last[k]["macro_recall"] - first[k]["macro_recall"])
    lines += ["", f"After {len(nights)} nights ({nights[-1]['feedback_total']} feedback records): airline test macro "
              f"recall {d('airline_test'):+.2f} pp, TweetEval validation {d('tweeteval_val'):+.2f} pp, gold "
              f"{d('gold'):+.2f} pp against the first champion.", "", "## Why", ""]
    for n in nights:
        lines.append(f"- night {n['night']}: **{n['report']['outcome']}** — {n['report']['reason']} "
                     f"([report]({n['report_file'].replace('.json', '.md')}))")
    (a.out / "report.md").write_text("\n".join(lines) + "\n")
    (a.out / "report.json").write_text(json.dumps(nights, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
