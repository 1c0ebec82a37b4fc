#!/usr/bin/env python3
"""Makes fixtures/monitor-history/: the history the monitor view's e2e test and screenshot show.

It comes from the retraining loop's own simulation (scripts/simulate_loop.py: the real server,
trainer and model store over six nights, with a promotion) plus a seventh night in which the
promoted champion turns out worse where the users are: they send feedback on posts where it and
its parent disagree (repeatedly), each labelled as the parent predicted, so the promotion guard of `nightly`
rolls it back. Then it is made small and
spread over days (the simulation runs in a minute, the view shows days):

- night k's feedback falls on day k (2026-12-01 + k - 1), each nightly run in the small hours
  after it; every time in the store (registry, reports, their file names and the versions named
  by their time) is moved the same way, monotonically, so order and durations hold;
- the store keeps `registry.json` and `reports/` only (no weights: the view reads nothing else);
- the feedback becomes counts per (day, model version, label, predicted) in feedback.json; the
  e2e test expands them into the server's segment files (e2e/monitor.test.mjs), so every count,
  agreement and label mix the server answers is the simulation's.

Usage: scripts/make-monitor-fixture.py [--sim DIR]   (DIR: an existing SIM_OUT to reuse)
Needs target/release/sentiment-{trainer,server} (or TRAINER=, SERVER=), as simulate-loop.sh.
"""
import argparse, datetime as dt, json, os, random, re, shutil, subprocess, sys, uuid
from collections import Counter
from pathlib import Path

from loop_pieces import ROOT, SERVER, TRAINER, post, predict, server

OUT = ROOT / "fixtures" / "monitor-history"
DAY1 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
ROLLBACK_POSTS = 600
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
VERSION = re.compile(r"\b(\d{8}-\d{6})-([0-9a-f]{8})\b")
STAMP = re.compile(r"\breports/(\d{17})\.json\b")


def parse(ts):
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rollback_night(sim):
    """Night 7: users side with the champion's parent; nightly's promotion guard should roll back."""
    store, registry = sim / "store", json.load(open(sim / "store" / "registry.json"))
    champ = registry["champion"]
    parent = next(v for v in registry["versions"] if v["version"] == champ).get("parent_version")
    if not parent:
        sys.exit(f"the champion {champ} has no parent: the simulation promoted nothing")
    data = ROOT / "fixtures" / "synthetic-sentiment"
    posts = [json.loads(l)["text"] for f in ("shifted.jsonl", "base-train.jsonl") for l in open(data / f) if l.strip()]
    parent_dir = sim / "parent-bundle"
    shutil.rmtree(parent_dir, ignore_errors=True)
    shutil.copytree(store / "versions" / parent, parent_dir)
    said, wanted = predict(store, posts), predict(parent_dir, posts)
    # The posts on which the two models disagree, labelled as the parent says.
    # They are few (the two agree on most posts), so they come back, as corrections do in bursts.
    differ = [i for i, (p, w) in enumerate(zip(said, wanted)) if p["label"] != w["label"]]
    if not differ:
        sys.exit(f"{champ} and {parent} agree on every post: no feedback can tell them apart")
    keep = [differ[k % len(differ)] for k in range(ROLLBACK_POSTS)]
    posts, said, wanted = [posts[i] for i in keep], [said[i] for i in keep], [wanted[i] for i in keep]
    rng = random.Random(77)
    # One user, as the loopback client the fixture's history was made with.
    with server(sim / "server-data", sim / "store", sim / "server-night7.log") as base:
        for text, p, w in zip(posts, said, wanted):
            post(base + "/api/feedback", {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "text": text, "predicted": p["label"],
                "scores": p["scores"], "label": w["label"], "model_version": champ}, "127.0.0.1")
    before = set((sim / "nightly-reports").glob("*.json"))
    r = subprocess.run([TRAINER, "nightly", "--config", sim / "nightly.toml"], capture_output=True, text=True, cwd=sim)
    new = sorted(set((sim / "nightly-reports").glob("*.json")) - before)
    if r.returncode != 0 or not new:
        sys.exit(f"night 7: nightly failed: {r.stderr.strip() or r.stdout.strip()}")
    rep = json.load(open(new[-1]))
    print(f"night 7: users side with {parent} → {rep['outcome']}: {rep['reason'][:160]}")
    return rep["outcome"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sim", type=Path, help="reuse this simulation output (SIM_OUT) instead of running it")
    args = ap.parse_args()
    sim = args.sim
    if sim is None:
        sim = ROOT / "target" / "monitor-simulation"
        subprocess.run([sys.executable, ROOT / "scripts" / "simulate_loop.py"], check=True,
                       env={**os.environ, "SIM_OUT": str(sim), "TRAINER": TRAINER, "SERVER": SERVER})
    reports = [json.load(open(p)) for p in (sim / "store" / "reports").glob("2*.json")]
    if not any(r["outcome"] == "rolled_back" for r in reports):
        rollback_night(sim)
    convert(sim)


def convert(sim):
    store = sim / "store"
    registry = json.load(open(store / "registry.json"))
    reports = [json.load(open(p)) for p in (store / "reports").glob("2*.json")]
    reports.sort(key=lambda r: r["started_at"])
    records = []
    for seg in sorted((sim / "server-data" / "segments").glob("*.jsonl")):
        records += [json.loads(l) for l in open(seg) if l.strip()]
    records.sort(key=lambda r: r["received_at"])

    # Anchors of the time map (real → fixture): the first publish; each night's first and last
    # feedback (08:00 and 20:00 of its day) and its nightly run (from 02:00 the next day).
    anchors = [(parse(registry["history"][0]["at"]), DAY1 - dt.timedelta(hours=12))]
    prev_end = anchors[0][0]
    for k, rep in enumerate(reports):
        start, end = parse(rep["started_at"]), parse(rep["finished_at"])
        night = [parse(r["received_at"]) for r in records if prev_end < parse(r["received_at"]) <= start]
        day = DAY1 + dt.timedelta(days=k)
        if night:
            anchors += [(night[0], day + dt.timedelta(hours=8)), (night[-1], day + dt.timedelta(hours=20))]
        run = day + dt.timedelta(days=1, hours=2)
        anchors += [(start, run), (end, run + (end - start))]
        prev_end = end
    anchors.sort()

    def move(t):
        for (r0, f0), (r1, f1) in zip(anchors, anchors[1:]):
            if r0 <= t <= r1:
                return f0 if r1 == r0 else f0 + (f1 - f0) * ((t - r0) / (r1 - r0))
        return anchors[0][1] + (t - anchors[0][0]) if t < anchors[0][0] else anchors[-1][1] + (t - anchors[-1][0])

    def move_version(m):
        real = dt.datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=dt.timezone.utc)
        return move(real).strftime("%Y%m%d-%H%M%S") + "-" + m.group(2)

    def move_stamp(m):
        s = m.group(1)
        real = dt.datetime.strptime(s[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc, microsecond=int(s[14:]) * 1000)
        t = move(real)
        return f"reports/{t.strftime('%Y%m%d%H%M%S')}{t.microsecond // 1000:03d}.json"

    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            if TS.match(v):
                return fmt(move(parse(v)))
            return STAMP.sub(move_stamp, VERSION.sub(move_version, v))
        return v

    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "store" / "reports").mkdir(parents=True)
    write = lambda path, obj: (OUT / path).write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")
    write("store/registry.json", walk(registry))
    write("store/reports/index.json", walk(json.load(open(store / "reports" / "index.json"))))
    for rep in reports:
        rep = walk(rep)
        stamp = "".join(c for c in rep["started_at"] if c.isdigit())[:17]
        write(f"store/reports/{stamp}.json", rep)
    counts = Counter()
    for r in records:
        day = fmt(move(parse(r["received_at"])))[:10]
        counts[(day, VERSION.sub(move_version, r["model_version"]), r["label"], r["predicted"])] += 1
    write("feedback.json", [{"day": d, "model_version": v, "label": l, "predicted": p, "count": n}
                            for (d, v, l, p), n in sorted(counts.items())])
    (OUT / "README.md").write_text(
        "# The monitor view's simulated history\n\n"
        "Made by `scripts/make-monitor-fixture.py` (its docstring says how): the loop simulation's model\n"
        "store (`store/`: `registry.json`, `reports/`; no weights) and its feedback as counts per day,\n"
        "model version, label and prediction (`feedback.json`), which `e2e/monitor-fixture.mjs` expands\n"
        "into the server's segment files. Used by `e2e/monitor.test.mjs` and `scripts/screenshots.sh`.\n")
    print(f"wrote {OUT}: {len(reports)} reports, {len(records)} feedback records in {len(counts)} counts")


if __name__ == "__main__":
    main()
