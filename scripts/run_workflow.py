#!/usr/bin/env python3
"""Runs the `run:` steps of one job of a GitHub Actions workflow here, as the runner would: in
the repository root, with `bash -eo pipefail`, the workflow's, job's and step's `env:` (their
`${{ vars.X }}`, `${{ secrets.X }}`, `${{ inputs.x }}` and `${{ github.sha }}` filled from the
command line) and the step's `if:`. `uses:` steps (checkout, cache, artifacts) are skipped and
said so. The rehearsal (scripts/rehearsal.sh) runs the deploy workflows through it, so what it
checks is the workflow files themselves, not a copy of their commands.

Supports only what this project's workflows use; anything else stops it with a message.

Usage: run_workflow.py WORKFLOW.yml [--job ID] [--var K=V] [--secret K=V] [--input K=V]
                        [--skip STEP_NAME]...
Exit status: that of the first failing step (0 if all pass).
"""

import argparse
import os
import re
import subprocess
import sys

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def pairs(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"run_workflow: {item!r} is not KEY=VALUE")
        out[key] = value
    return out


class Context:
    def __init__(self, args, sha):
        self.vars, self.secrets, self.inputs = pairs(args.var), pairs(args.secret), pairs(args.input)
        self.sha = sha
        self.env = {}

    def value(self, expr):
        """One expression: a context value, `a && 'x' || ''`, or a comparison with a string."""
        m = re.fullmatch(r"(vars|secrets|inputs|env)\.([A-Za-z_][A-Za-z0-9_]*)", expr)
        if m:
            table = {"vars": self.vars, "secrets": self.secrets, "inputs": self.inputs, "env": self.env}[m[1]]
            return table.get(m[2], "")
        if expr == "github.sha":
            return self.sha
        if expr == "runner.os":
            return "Linux"
        m = re.fullmatch(r"([a-z]+\.[A-Za-z_][A-Za-z0-9_]*)\s*\|\|\s*(.+)", expr)
        if m:
            first = self.value(m[1])
            return first if self.truthy(first) else self.value(m[2])
        m = re.fullmatch(r"(.+?)\s*&&\s*'([^']*)'\s*\|\|\s*'([^']*)'", expr)
        if m:
            return m[2] if self.truthy(self.value(m[1])) else m[3]
        m = re.fullmatch(r"(.+?)\s*(==|!=)\s*'([^']*)'", expr)
        if m:
            equal = str(self.value(m[1])) == m[3]
            return equal if m[2] == "==" else not equal
        if expr in ("always()", "success()"):
            return True
        m = re.fullmatch(r"hashFiles\(.*\)", expr)
        if m:
            return "hash"
        sys.exit(f"run_workflow: unsupported expression ${{{{ {expr} }}}}")

    @staticmethod
    def truthy(v):
        return v not in ("", "false", False, None, 0)

    def fill(self, text):
        return EXPR.sub(lambda m: str(self.value(m[1])), str(text))

    def condition(self, cond):
        if cond is None:
            return True
        inner = EXPR.fullmatch(cond.strip())
        return self.truthy(self.value(inner[1] if inner else cond.strip()))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workflow")
    p.add_argument("--job")
    p.add_argument("--var", action="append", default=[])
    p.add_argument("--secret", action="append", default=[])
    p.add_argument("--input", action="append", default=[])
    p.add_argument("--skip", action="append", default=[])
    args = p.parse_args()
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True).stdout.strip()
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=root).stdout.strip()
    wf = yaml.safe_load(open(args.workflow))
    jobs = wf["jobs"]
    job_id = args.job or next(iter(jobs))
    job = jobs[job_id]
    ctx = Context(args, sha)
    # `on: workflow_dispatch: inputs:` defaults (YAML reads the key `on` as True).
    on = wf.get("on", wf.get(True)) or {}
    dispatch = on.get("workflow_dispatch") if isinstance(on, dict) else None
    for name, spec in ((dispatch or {}).get("inputs") or {}).items():
        default = spec.get("default", "")
        ctx.inputs.setdefault(name, str(default).lower() if isinstance(default, bool) else str(default))
    base_env = dict(os.environ)
    for scope in (wf.get("env") or {}, job.get("env") or {}):
        for k, v in scope.items():
            ctx.env[k] = ctx.fill(v)
    print(f"==> [workflow] {os.path.basename(args.workflow)} job {job_id}", flush=True)
    for i, step in enumerate(job["steps"], 1):
        name = step.get("name") or step.get("uses") or f"step {i}"
        if "uses" in step:
            print(f"--> skip (uses: {step['uses']}): {name}", flush=True)
            continue
        if name in args.skip:
            print(f"--> skip (asked): {name}", flush=True)
            continue
        step_env = dict(ctx.env)
        saved = ctx.env
        ctx.env = step_env
        for k, v in (step.get("env") or {}).items():
            step_env[k] = ctx.fill(v)
        run_it = ctx.condition(step.get("if"))
        ctx.env = saved
        if not run_it:
            print(f"--> skip (if: {step['if']}): {name}", flush=True)
            continue
        script = ctx.fill(step["run"])
        print(f"--> run: {name}", flush=True)
        code = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              cwd=os.path.join(root, step.get("working-directory", ".")),
                              env={**base_env, **step_env, "GITHUB_SHA": sha}).returncode
        if code != 0:
            print(f"--> failed ({code}): {name}", flush=True)
            sys.exit(code)
    print("==> [workflow] every step passed", flush=True)


if __name__ == "__main__":
    main()
