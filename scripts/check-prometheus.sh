#!/usr/bin/env bash
# The Prometheus side of the monitoring (issue 33.2), with the real Prometheus tooling:
#  - `promtool check config` on prometheus/prometheus.yml (and the rule file it loads);
#  - `promtool check rules` and `promtool test rules` (rules_test.yml fires and does not fire
#    each alert);
#  - every metric the rules and prometheus/grafana-dashboard.json name is on a live release
#    server's /metrics, and each alert's expression is a query of the dashboard, verbatim.
# Needs promtool (Debian package `prometheus`) and python3 (PyYAML: the system's, else a venv).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool missing: apt-get install -y prometheus"; exit 1; }
# PyYAML: the system's if it has it, else a venv kept in target/ (from PyPI, like hub-contract's).
PY=python3
if [ -n "${PROM_CHECK_VENV:-}" ] || ! python3 -c 'import yaml' 2>/dev/null; then
  VENV=${PROM_CHECK_VENV:-target/prometheus-check-venv}
  "$VENV/bin/python" -c 'import yaml' 2>/dev/null || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q pyyaml; }
  PY=$VENV/bin/python
fi
promtool check config prometheus/prometheus.yml
promtool check rules prometheus/rules.yml
promtool test rules prometheus/rules_test.yml

cargo build --release -q -p sentiment-server
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-prom.XXXXXX")
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
${CARGO_TARGET_DIR:-target}/release/sentiment-server --addr 127.0.0.1:0 --data-dir "$WORK/data" \
  --agreement-baseline 0.7 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do grep -qs "listening on" "$WORK/server.log" && break; sleep 0.05; done
URL=$(grep -o "http://[0-9.:]*" "$WORK/server.log" | head -1)
BODY='{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","text":"great","predicted":"positive","scores":{"negative":0.1,"neutral":0.2,"positive":0.7},"label":"neutral","model_version":"v1"}'
curl -s -o /dev/null -H 'content-type: application/json' -d "$BODY" "$URL/api/feedback"
curl -s "$URL/metrics" >"$WORK/metrics.txt"

"$PY" - "$WORK/metrics.txt" <<'PY'
import json, re, sys, yaml
exposed = set()
for line in open(sys.argv[1]):
    m = re.match(r'# TYPE (\w+) (\w+)', line)
    if m:
        name, kind = m.groups()
        exposed.add(name)
        if kind == 'histogram':
            exposed.update(name + s for s in ('_bucket', '_sum', '_count'))
rules = yaml.safe_load(open('prometheus/rules.yml'))
alerts = {r['alert']: r['expr'] for g in rules['groups'] for r in g['rules'] if 'alert' in r}
dash = json.load(open('prometheus/grafana-dashboard.json'))
queries = [t['expr'] for p in dash['panels'] for t in p.get('targets', [])]
problems = []
for name, expr in alerts.items():
    if expr not in queries:
        problems.append(f'alert {name}: its expression is not a dashboard query')
for where, expr in [('rules', e) for e in alerts.values()] + [('dashboard', q) for q in queries]:
    for metric in set(re.findall(r'\bsentiment_[a-z0-9_]+', expr)):
        if metric not in exposed:
            problems.append(f'{where}: {metric} is not on /metrics')
print(f'{len(alerts)} alerts, {len(queries)} dashboard queries, {len(exposed)} metric names on /metrics')
if problems:
    print('\n'.join('FAIL: ' + p for p in problems))
    sys.exit(1)
print('OK: every alert is on the dashboard; every metric the rules and the dashboard read is exposed')
PY
