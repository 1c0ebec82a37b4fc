"""Checks the Hub stand-in (backend/hub-stand-in) against the official `huggingface_hub` client.

Run by scripts/hub-contract.sh with HF_ENDPOINT pointing at a running stand-in and, optionally,
SENTIMENT_SYNCED_REPO / SENTIMENT_SYNCED_IDS naming a dataset that sentiment-server synced and
the ids it acknowledged, and SENTIMENT_IMPORT_CACHE naming the HF cache that `sentiment-trainer
import --from contract/tiny` filled from the model repo `upload-model` made of
SENTIMENT_MODEL_DIR. Uploads (regular and LFS), commits, lists and downloads through the real
client; exits non-zero on the first mismatch.

`hub_contract.py upload-model` only creates contract/tiny from SENTIMENT_MODEL_DIR.
"""

import json
import re
import os
import sys
import tempfile

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

endpoint = os.environ["HF_ENDPOINT"]
api = HfApi(endpoint=endpoint, token="hf_contract_check")
repo = "contract/check-logs"
model_repo = "contract/tiny"
checks = 0

if sys.argv[1:] == ["upload-model"]:
    api.create_repo(model_repo, exist_ok=True)
    api.upload_folder(repo_id=model_repo, folder_path=os.environ["SENTIMENT_MODEL_DIR"],
                      commit_message="tiny checkpoint", ignore_patterns=["*.bin"])
    print(f"uploaded {model_repo}")
    sys.exit(0)


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


url = api.create_repo(repo, repo_type="dataset", exist_ok=True)
check(str(url).endswith("datasets/" + repo), f"create_repo -> {url}")

small = b'{"id":"a","label":"positive"}\n'
info = api.upload_file(path_or_fileobj=small, path_in_repo="data/py/00000001.jsonl",
                       repo_id=repo, repo_type="dataset", commit_message="small file")
check(len(info.oid) == 40, f"upload_file (regular) -> commit {info.oid}")

large = os.urandom(3000)  # the fake is started with --lfs-threshold 2048
info = api.upload_file(path_or_fileobj=large, path_in_repo="data/py/blob.bin",
                       repo_id=repo, repo_type="dataset", commit_message="large file")
check(len(info.oid) == 40, "upload_file (LFS, basic transfer) -> commit")

ops = [CommitOperationAdd(path_in_repo=f"data/py/{i:08d}.jsonl", path_or_fileobj=f"line {i}\n".encode())
       for i in range(2, 5)]
info = api.create_commit(repo_id=repo, repo_type="dataset", operations=ops, commit_message="three files")
check(info.commit_url.endswith(info.oid), "create_commit with three files")
last_commit = info.oid

files = sorted(api.list_repo_files(repo, repo_type="dataset"))
want = ["data/py/00000001.jsonl", "data/py/00000002.jsonl", "data/py/00000003.jsonl",
        "data/py/00000004.jsonl", "data/py/blob.bin"]
check(files == want, f"list_repo_files -> {files}")

tree = list(api.list_repo_tree(repo, path_in_repo="data/py", repo_type="dataset"))
lfs = [t.path for t in tree if getattr(t, "lfs", None)]
check(lfs == ["data/py/blob.bin"], f"list_repo_tree marks LFS files -> {lfs}")
sizes = {t.path: t.size for t in tree}
check(sizes["data/py/blob.bin"] == 3000 and sizes["data/py/00000001.jsonl"] == len(small), "tree sizes")


def set_faults(**changes):
    """Changes the stand-in's faults (its control endpoint, not part of the Hub API)."""
    import urllib.request
    faults = json.load(urllib.request.urlopen(endpoint + "/_fake/faults"))
    faults.update(changes)
    req = urllib.request.Request(endpoint + "/_fake/faults", data=json.dumps(faults).encode(), method="PUT",
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req).close()


# The Hub lists trees in pages (a cursor, and a Link header naming the next page): with two
# entries a page, the official client must still see every entry exactly once.
set_faults(tree_page_size=2)
paged = [t.path for t in api.list_repo_tree(repo, path_in_repo="data/py", repo_type="dataset", recursive=True)]
check(sorted(paged) == want and len(paged) == len(set(paged)),
      f"list_repo_tree follows the stand-in's pages (2 entries a page) -> {len(paged)} entries")
paged_root = [t.path for t in api.list_repo_tree(repo, repo_type="dataset", recursive=True)]
check(sorted(p for p in paged_root if "." in p.rsplit("/", 1)[-1]) == want,
      f"and from the root, with directories -> {len(paged_root)} entries")
set_faults(tree_page_size=0)

with tempfile.TemporaryDirectory() as cache:
    p = hf_hub_download(repo, "data/py/00000001.jsonl", repo_type="dataset", cache_dir=cache)
    check(open(p, "rb").read() == small, "hf_hub_download (regular) returns the bytes")
    p = hf_hub_download(repo, "data/py/blob.bin", repo_type="dataset", cache_dir=cache)
    check(open(p, "rb").read() == large, "hf_hub_download (LFS) returns the bytes")

check(api.file_exists(repo, "data/py/00000002.jsonl", repo_type="dataset"), "file_exists (present)")
check(not api.file_exists(repo, "data/py/nope.jsonl", repo_type="dataset"), "file_exists (absent)")

info = api.repo_info(repo, repo_type="dataset")
check(info.sha == last_commit, f"repo_info -> the last commit {info.sha}")
check(sorted(s.rfilename for s in info.siblings) == want, "repo_info lists every file")

# parentCommit: a commit on top of an older parent is refused as the Hub refuses it (412 with
# the Hub's words; huggingface_hub's own test_create_commit_conflict expects exactly this).
from huggingface_hub import CommitOperationDelete
from huggingface_hub.errors import HfHubHTTPError
stale = last_commit
info = api.create_commit(repo_id=repo, repo_type="dataset", commit_message="on top",
                         operations=[CommitOperationAdd("data/py/00000005.jsonl", b"five\n")], parent_commit=stale)
check(len(info.oid) == 40 and info.oid != stale, "create_commit with the current head as parent_commit applies")
try:
    api.create_commit(repo_id=repo, repo_type="dataset", commit_message="lost update",
                      operations=[CommitOperationAdd("data/py/00000006.jsonl", b"six\n")], parent_commit=stale)
    check(False, "a stale parent_commit is refused")
except HfHubHTTPError as e:
    check(e.response.status_code == 412 and "A commit has happened since" in str(e),
          f"a stale parent_commit is refused: {e.response.status_code}")
check(not api.file_exists(repo, "data/py/00000006.jsonl", repo_type="dataset"), "the refused commit changed nothing")
# Deletes, and reading an older revision (what a reader pinned to a commit sees).
info = api.create_commit(repo_id=repo, repo_type="dataset", commit_message="delete one", parent_commit=info.oid,
                         operations=[CommitOperationDelete("data/py/00000005.jsonl")])
check(not api.file_exists(repo, "data/py/00000005.jsonl", repo_type="dataset"), "CommitOperationDelete deletes")
check(api.file_exists(repo, "data/py/00000005.jsonl", repo_type="dataset", revision=info.oid[:7]) is False,
      "a short commit id is a revision")
old = sorted(api.list_repo_files(repo, repo_type="dataset", revision=stale))
check(old == want, "list_repo_files at an older commit lists that commit's files")
with tempfile.TemporaryDirectory() as cache:
    p = hf_hub_download(repo, "data/py/00000002.jsonl", repo_type="dataset", cache_dir=cache, revision=stale)
    check(open(p, "rb").read() == b"line 2\n", "hf_hub_download at an older commit")
last_commit = info.oid
# LFS content comes from a separate content-delivery origin, as on the Hub.
import http.client
import urllib.parse


def raw_get(url, headers=None):
    """One GET without following redirects: (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("GET", u.path + (f"?{u.query}" if u.query else ""), headers=headers or {})
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


status, headers, _ = raw_get(f"{endpoint}/datasets/{repo}/resolve/main/data/py/blob.bin",
                             {"origin": "http://page.example"})
cdn = headers.get("location", "")
check(status == 302 and not cdn.startswith(endpoint) and headers.get("x-linked-size") == "3000"
      and headers.get("access-control-allow-origin") == "http://page.example",
      f"resolve of an LFS file redirects to another origin, with CORS -> {status} {cdn}")
status, headers, body = raw_get(cdn)
check(status == 200 and body == large and headers.get("access-control-allow-origin") == "*"
      and headers.get("cross-origin-resource-policy") == "cross-origin",
      "the content-delivery origin serves it, with CORS and CORP")

import_cache = os.environ.get("SENTIMENT_IMPORT_CACHE")
if import_cache:
    from huggingface_hub import snapshot_download
    src = os.environ["SENTIMENT_MODEL_DIR"]
    # Offline: only what sentiment-trainer import put in the cache can answer.
    local = snapshot_download(model_repo, cache_dir=import_cache, local_files_only=True)
    names = sorted(os.listdir(local))
    check(names == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
          f"huggingface_hub finds import's files in the HF cache -> {names}")
    check(all(open(os.path.join(local, n), "rb").read() == open(os.path.join(src, n), "rb").read() for n in names),
          "with the uploaded bytes")
    check(os.path.basename(local) == api.model_info(model_repo).sha, "in the snapshot of the repo's commit")

synced_repo = os.environ.get("SENTIMENT_SYNCED_REPO")
if synced_repo:
    ids_file = os.environ["SENTIMENT_SYNCED_IDS"]
    acked = [l.strip() for l in open(ids_file) if l.strip()]
    paths = [p for p in api.list_repo_files(synced_repo, repo_type="dataset") if p.startswith("data/")]
    seen = []
    incomplete = 0
    required = {"id", "text", "predicted", "scores", "label", "model_version", "received_at"}
    with tempfile.TemporaryDirectory() as cache:
        for path in paths:
            local = hf_hub_download(synced_repo, path, repo_type="dataset", cache_dir=cache)
            for line in open(local, encoding="utf-8"):
                rec = json.loads(line)
                # `client`: the server's pseudonymous client key (16 hex digits), never the address.
                client_ok = "client" not in rec or re.fullmatch(r"[0-9a-f]{16}", rec["client"]) is not None
                incomplete += not (required <= set(rec) <= required | {"note", "client"} and client_ok)
                seen.append(rec["id"])
    check(incomplete == 0, f"every synced line is a feedback record ({len(seen)} lines)")
    check(len(paths) >= 1 and all(p.count("/") == 2 and p.endswith(".jsonl") for p in paths),
          f"sentiment-server wrote data/<instance-id>/<segment>.jsonl -> {paths}")
    check(sorted(seen) == sorted(acked) and len(set(seen)) == len(seen),
          f"the synced dataset holds exactly the {len(acked)} acknowledged records")

print(f"{checks} passed, 0 failed")
