"""What the scripts that run the retraining loop's real pieces share (simulate_loop.py,
airline_scenario.py, make-monitor-fixture.py, compare_recipes.py; stdlib only): the trainer's
commands, a `sentiment-server` of their own, and feedback POSTed as the Space's proxy forwards it."""
import contextlib, json, os, socket, subprocess, sys, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINER = os.environ.get("TRAINER", str(ROOT / "target" / "release" / "sentiment-trainer"))
SERVER = os.environ.get("SERVER", str(ROOT / "target" / "release" / "sentiment-server"))


def sh(*args, stdin=None):
    r = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args[:2]))} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def jsonl(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def evaluate(model, data):
    """`sentiment-trainer eval`'s figures for a bundle (or store) on a JSONL of text + label."""
    return json.loads(sh(TRAINER, "eval", "--model", model, "--data", data, "--json"))


def figures(model, data):
    """`evaluate`'s count, accuracy and macro recall: what the scripts' reports keep."""
    r = evaluate(model, data)
    return {"n": r["n"], "accuracy": r["accuracy"], "macro_recall": r["macro_recall"]}


def predict(model, texts):
    """The bundle's prediction of each text, as the page makes it: {label, scores}."""
    out = sh(TRAINER, "predict", "--model", model, "--json", stdin="\n".join(texts) + "\n")
    return [json.loads(l) for l in out.splitlines()]


def post(url, body, client):
    """POST one feedback record as coming from `client`'s address: the server trusts one proxy
    hop from loopback, so each simulated user gets its own pseudonymous client key."""
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"content-type": "application/json", "x-forwarded-for": client})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


@contextlib.contextmanager
def server(data_dir, model_dir, log, client_key_secret=None):
    """A `sentiment-server` on a free loopback port, without its rate limit, trusting one proxy
    hop; yields its base URL and stops it on the way out. A fixed client-key secret makes the
    client keys, and so the trainer's split by client, the same on every run."""
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ)
    if client_key_secret:
        env["SENTIMENT_CLIENT_KEY_SECRET"] = client_key_secret
    proc = subprocess.Popen([SERVER, "--addr", f"127.0.0.1:{port}", "--data-dir", data_dir, "--model-dir", model_dir,
                             "--rate-limit", "1000000", "--rate-burst", "100000", "--trusted-proxy-hops", "1"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1); break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"sentiment-server did not come up; see {log}")
        yield base
    finally:
        proc.terminate(); proc.wait()
