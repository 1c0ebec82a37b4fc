#!/usr/bin/env python3
"""Static fallback for the end-to-end test when sentiment-server is not built: the built app
at / and a model bundle at /model/ (no feedback API). 127.0.0.1 only.

Usage: e2e/serve.py PORT DIST_DIR [MODEL_DIR]
"""
import functools
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm"}

    def __init__(self, *args, dist, model, **kwargs):
        self.dist, self.model = dist, model
        super().__init__(*args, directory=dist, **kwargs)

    def translate_path(self, path):
        if path.startswith("/model/"):
            if not self.model:
                return "/nonexistent"
            rel = path[len("/model/"):].split("?", 1)[0]
            return os.path.join(self.model, os.path.normpath("/" + rel).lstrip("/"))
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *args):
        pass


def main():
    port, dist = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    model = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    handler = functools.partial(Handler, dist=dist, model=model)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()
