#!/usr/bin/env python3
"""A static Space's host for the rehearsal: serves a Space folder (as the Hub holds it) at /,
with exactly the headers its README front matter's `custom_headers` asks for and nothing else
of our own: what https://OWNER-NAME.static.hf.space does with the files `hf upload` pushed.
Refuses to start for a Space whose front matter is not `sdk: static`. 127.0.0.1 only.

Usage: e2e/space_host.py PORT SPACE_DIR
"""
import functools
import http.server
import os
import sys

import yaml


def front_matter(readme):
    text = open(readme, encoding="utf-8").read()
    if not text.startswith("---\n"):
        sys.exit(f"{readme}: no front matter")
    return yaml.safe_load(text[4:text.index("\n---", 4)])


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm"}

    def __init__(self, *args, headers, **kwargs):
        self.custom = headers
        super().__init__(*args, **kwargs)

    def end_headers(self):
        for k, v in self.custom.items():
            self.send_header(k, str(v))
        super().end_headers()

    def log_message(self, *args):
        pass


def main():
    port, space = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    meta = front_matter(os.path.join(space, "README.md"))
    if meta.get("sdk") != "static":
        sys.exit(f"{space}: sdk is {meta.get('sdk')!r}, not static")
    headers = meta.get("custom_headers") or {}
    handler = functools.partial(Handler, directory=space, headers=headers)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    print(f"static Space on http://127.0.0.1:{port} with headers {headers}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
