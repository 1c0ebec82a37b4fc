//! The one client of the Hugging Face Hub's HTTP API, used by every command that talks to the
//! Hub (`sentiment-trainer import`, `publish`, `rollback`, `monitor`, `nightly`) and by
//! `sentiment-server`'s sync: repo info and file resolve (to memory, or into the HF cache as the
//! official client lays it out: [`snapshot`]), tree listing, preupload, LFS (basic transfer) and
//! NDJSON commits. Blocking (ureq); call it from `spawn_blocking` in async code.
//!
//! Build it with [`HubClient::from_env`] (endpoint, token, timeout: [`HubConfig::from_env`]).
//! The crate `hub-stand-in` serves the same API locally, for tests and the contract check
//! against the official Python client.

mod config;
pub mod snapshot;

pub use config::{ConfigError, HubConfig, TokenSource, DEFAULT_ENDPOINT, DEFAULT_TIMEOUT};
pub use shared::RepoId;
pub use snapshot::{HfCache, Snapshot, SnapshotError};

use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use shared::sha256_hex;
use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;

/// Bytes of a file's start sent to `preupload` (the Hub decides regular vs LFS from it).
const SAMPLE_BYTES: usize = 512;
/// Largest body read from an API answer (tree listings, errors).
const MAX_ANSWER_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{method} {url} answered {status}: {body}")]
    Status { method: &'static str, url: String, status: u16, body: String },
    #[error("{method} {url} failed: {reason}")]
    Transport { method: &'static str, url: String, reason: String },
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl HubError {
    /// Worth trying again later: network trouble, timeouts, 5xx, 429, 408.
    pub fn is_retryable(&self) -> bool {
        match self {
            HubError::Transport { .. } => true,
            HubError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            HubError::Decode { .. } => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, HubError::Status { status: 404, .. })
    }

    /// A commit refused because the branch moved past its `parentCommit` (the Hub answers 412
    /// "A commit has happened since. Please refresh and try again.").
    pub fn is_conflict(&self) -> bool {
        matches!(self, HubError::Status { status: 412, .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoType {
    Model,
    Dataset,
    Space,
}

impl RepoType {
    fn api_plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }

    /// Prefix of file URLs (`/datasets/owner/name/resolve/...`; models have none).
    fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        }
    }
}

/// A repository at a revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub repo_type: RepoType,
    pub id: RepoId,
    /// A branch, tag or commit.
    pub revision: String,
}

impl Repo {
    pub fn dataset(id: RepoId) -> Self {
        Repo { repo_type: RepoType::Dataset, id, revision: "main".into() }
    }
    pub fn model(id: RepoId) -> Self {
        Repo { repo_type: RepoType::Model, id, revision: "main".into() }
    }
    pub fn at_revision(self, revision: impl Into<String>) -> Self {
        Repo { revision: revision.into(), ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    Regular,
    Lfs,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreuploadAnswer {
    pub path: String,
    pub upload_mode: UploadMode,
    #[serde(default)]
    pub should_ignore: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    pub commit_url: String,
    pub commit_oid: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LfsInfo {
    pub oid: String,
    pub size: u64,
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TreeEntry {
    /// `file` or `directory`.
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub oid: String,
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

/// Metadata from a `HEAD` on a file's resolve URL.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    /// The sha256 of an LFS file's content; a git blob id otherwise.
    pub etag: Option<String>,
    pub size: Option<u64>,
    pub commit: Option<String>,
}

/// What `GET /api/{models,datasets}/<id>/revision/<rev>` says about a repo.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RepoInfo {
    /// The commit the revision resolves to.
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

/// One file of a repo, in [`RepoInfo`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sibling {
    pub rfilename: String,
}

/// A file to add in a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct AddFile {
    pub path: String,
    pub content: Vec<u8>,
}

/// One commit: files to add (or replace) and paths to delete, applied together or not at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commit<'a> {
    pub summary: &'a str,
    pub add: &'a [AddFile],
    pub delete: &'a [String],
    /// Apply only if the branch still points at this commit (the Hub's `parentCommit`): a
    /// writer that read the repo at this commit then loses no one else's change. A moved branch
    /// is refused with 412 ([`HubError::is_conflict`]).
    pub parent: Option<&'a str>,
}

/// The Hub client. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct HubClient {
    endpoint: String,
    token: Option<String>,
    token_source: TokenSource,
    /// API calls: each bounded by `timeout` as a whole.
    agent: ureq::Agent,
    /// The same without following redirects: a file's metadata is on the Hub's own answer, not
    /// on the CDN's it redirects LFS files to.
    head_agent: ureq::Agent,
    /// File contents (downloads, LFS uploads): `timeout` bounds connecting and each wait for
    /// the next bytes, not the whole transfer, so a large file on a slow link gets through
    /// while a stalled Hub is given up on. Every transfer opens its own connection: ureq 2
    /// applies the idle timeouts only to a fresh one (a pooled one would wait forever).
    transfer_agent: ureq::Agent,
}

impl fmt::Debug for HubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_source", &self.token_source)
            .finish()
    }
}

/// Percent-encodes a repo path, keeping `/` between segments.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl HubClient {
    /// The client every command uses: [`HubConfig::from_env`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(HubConfig::from_env()?))
    }

    pub fn new(config: HubConfig) -> Self {
        let builder = || {
            ureq::AgentBuilder::new()
                .timeout_connect(config.timeout.min(Duration::from_secs(10)))
                .user_agent(concat!("sentiment-monitor/", env!("CARGO_PKG_VERSION")))
        };
        HubClient {
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
            token: config.token.filter(|t| !t.is_empty()),
            token_source: config.token_source,
            agent: builder().timeout(config.timeout).build(),
            head_agent: builder().timeout(config.timeout).redirects(0).build(),
            transfer_agent: builder()
                .timeout_read(config.timeout)
                .timeout_write(config.timeout)
                .max_idle_connections(0)
                .build(),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether a token is set, and where it came from (for messages; never the token).
    pub fn token_source(&self) -> &TokenSource {
        &self.token_source
    }

    fn api_url(&self, repo: &Repo, action: &str) -> String {
        format!(
            "{}/api/{}/{}/{action}/{}",
            self.endpoint,
            repo.repo_type.api_plural(),
            repo.id,
            encode_path(&repo.revision)
        )
    }

    fn file_url(&self, repo: &Repo, path: &str) -> String {
        format!(
            "{}/{}{}/resolve/{}/{}",
            self.endpoint,
            repo.repo_type.url_prefix(),
            repo.id,
            encode_path(&repo.revision),
            encode_path(path)
        )
    }

    fn request(&self, method: &'static str, url: &str) -> ureq::Request {
        self.authorize(self.agent.request(method, url))
    }

    fn authorize(&self, req: ureq::Request) -> ureq::Request {
        match &self.token {
            Some(t) => req.set("authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    fn call(
        &self,
        method: &'static str,
        url: &str,
        req: ureq::Request,
        body: Body<'_>,
    ) -> Result<ureq::Response, HubError> {
        let sent = match body {
            Body::None => req.call(),
            Body::Json(v) => req.send_json(v),
            Body::Bytes(ct, b) => req.set("content-type", ct).send_bytes(b),
        };
        match sent {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => {
                let mut body = String::new();
                let _ = resp.into_reader().take(2000).read_to_string(&mut body);
                Err(HubError::Status { method, url: url.to_owned(), status, body: body.chars().take(300).collect() })
            }
            Err(ureq::Error::Transport(t)) => {
                Err(HubError::Transport { method, url: url.to_owned(), reason: t.to_string() })
            }
        }
    }

    fn read_json<T: serde::de::DeserializeOwned>(url: &str, resp: ureq::Response) -> Result<T, HubError> {
        let mut buf = Vec::new();
        resp.into_reader()
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut buf)
            .map_err(|e| HubError::Decode { url: url.to_owned(), reason: e.to_string() })?;
        serde_json::from_slice(&buf).map_err(|e| HubError::Decode { url: url.to_owned(), reason: e.to_string() })
    }

    /// Asks the Hub how each file must be uploaded.
    pub fn preupload(&self, repo: &Repo, files: &[AddFile]) -> Result<Vec<PreuploadAnswer>, HubError> {
        let url = self.api_url(repo, "preupload");
        let body = json!({ "files": files.iter().map(|f| json!({
            "path": f.path,
            "sample": base64::engine::general_purpose::STANDARD.encode(&f.content[..f.content.len().min(SAMPLE_BYTES)]),
            "size": f.content.len(),
            "sha": sha256_hex(&f.content),
        })).collect::<Vec<_>>() });
        let resp = self.call("POST", &url, self.request("POST", &url), Body::Json(body))?;
        #[derive(Deserialize)]
        struct Answer {
            files: Vec<PreuploadAnswer>,
        }
        Ok(Self::read_json::<Answer>(&url, resp)?.files)
    }

    /// Uploads one file's content through the LFS batch API (basic transfer).
    pub fn lfs_upload(&self, repo: &Repo, content: &[u8]) -> Result<(), HubError> {
        let oid = sha256_hex(content);
        let url = format!("{}/{}{}.git/info/lfs/objects/batch", self.endpoint, repo.repo_type.url_prefix(), repo.id);
        let body = json!({
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{ "oid": oid, "size": content.len() }],
            "hash_algo": "sha256",
            "ref": { "name": repo.revision },
        });
        let req = self.request("POST", &url).set("accept", "application/vnd.git-lfs+json");
        let resp = self.call(
            "POST",
            &url,
            req,
            Body::Bytes("application/vnd.git-lfs+json", &serde_json::to_vec(&body).expect("json")),
        )?;
        let answer: serde_json::Value = Self::read_json(&url, resp)?;
        let obj = answer["objects"]
            .get(0)
            .ok_or_else(|| HubError::Decode { url: url.clone(), reason: "no objects".into() })?;
        if let Some(err) = obj.get("error") {
            return Err(HubError::Decode { url, reason: format!("LFS batch refused the object: {err}") });
        }
        let Some(actions) = obj.get("actions") else {
            return Ok(());
        }; // already stored
        let headers = |a: &serde_json::Value| -> Vec<(String, String)> {
            a["header"]
                .as_object()
                .map(|h| h.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default()
        };
        if let Some(upload) = actions.get("upload") {
            let href = upload["href"]
                .as_str()
                .ok_or_else(|| HubError::Decode { url: url.clone(), reason: "upload without href".into() })?;
            let hs = headers(upload);
            if hs.iter().any(|(k, _)| k == "chunk_size") {
                return Err(HubError::Decode {
                    url: href.to_owned(),
                    reason: "multipart LFS upload is not supported".into(),
                });
            }
            let mut req = self.transfer_agent.put(href);
            for (k, v) in &hs {
                req = req.set(k, v);
            }
            self.call("PUT", href, req, Body::Bytes("application/octet-stream", content))?;
        }
        if let Some(verify) = actions.get("verify") {
            let href = verify["href"]
                .as_str()
                .ok_or_else(|| HubError::Decode { url: url.clone(), reason: "verify without href".into() })?;
            let mut req = self.request("POST", href);
            for (k, v) in headers(verify) {
                req = req.set(&k, &v);
            }
            self.call("POST", href, req, Body::Json(json!({ "oid": oid, "size": content.len() })))?;
        }
        Ok(())
    }

    /// Adds `files` in one commit: preupload, LFS upload where the Hub asks for it, then the
    /// NDJSON commit. Files the Hub says to ignore (`.gitignore`) are left out.
    pub fn upload_files(&self, repo: &Repo, files: &[AddFile], summary: &str) -> Result<CommitInfo, HubError> {
        self.commit(repo, &Commit { summary, add: files, ..Commit::default() })
    }

    /// Makes one commit of additions and deletions (the Hub's NDJSON commit API, as
    /// `huggingface_hub.create_commit` sends it), optionally on top of an expected parent.
    pub fn commit(&self, repo: &Repo, commit: &Commit<'_>) -> Result<CommitInfo, HubError> {
        let answers = if commit.add.is_empty() { Vec::new() } else { self.preupload(repo, commit.add)? };
        let mode = |path: &str| answers.iter().find(|a| a.path == path);
        // Sized once: grown by doubling, the body of a commit of a few MiB held the old and the
        // new buffer at once, which made the syncer's heap peak ~1.5x higher (tests/hub_sync.rs
        // bounds it). Base64 is 4/3 of the bytes; 256 bytes a line covers the JSON around them.
        let lines = 1 + commit.add.len() + commit.delete.len();
        let content: usize = commit.add.iter().map(|f| f.content.len().div_ceil(3) * 4).sum();
        let mut ndjson = Vec::with_capacity(content + 256 * lines + commit.summary.len());
        let mut header = json!({ "summary": commit.summary, "description": "" });
        if let Some(parent) = commit.parent {
            header["parentCommit"] = json!(parent);
        }
        serde_json::to_writer(&mut ndjson, &json!({ "key": "header", "value": header })).expect("json");
        ndjson.push(b'\n');
        for f in commit.add {
            let answer = mode(&f.path);
            if answer.is_some_and(|a| a.should_ignore) {
                continue;
            }
            let line = if answer.is_some_and(|a| a.upload_mode == UploadMode::Lfs) && !f.content.is_empty() {
                self.lfs_upload(repo, &f.content)?;
                json!({ "key": "lfsFile", "value": {
                    "path": f.path, "algo": "sha256", "oid": sha256_hex(&f.content), "size": f.content.len() } })
            } else {
                json!({ "key": "file", "value": {
                    "content": base64::engine::general_purpose::STANDARD.encode(&f.content),
                    "path": f.path, "encoding": "base64" } })
            };
            serde_json::to_writer(&mut ndjson, &line).expect("json");
            ndjson.push(b'\n');
        }
        for path in commit.delete {
            serde_json::to_writer(&mut ndjson, &json!({ "key": "deletedFile", "value": { "path": path } }))
                .expect("json");
            ndjson.push(b'\n');
        }
        let url = self.api_url(repo, "commit");
        let resp = self.call("POST", &url, self.request("POST", &url), Body::Bytes("application/x-ndjson", &ndjson))?;
        Self::read_json(&url, resp)
    }

    /// Creates a repo (`POST /api/repos/create`, as `huggingface_hub.create_repo`); `Ok(false)`
    /// when it already exists. Needs a token with write access to the owner.
    pub fn create_repo(&self, repo: &Repo, private: bool) -> Result<bool, HubError> {
        let url = format!("{}/api/repos/create", self.endpoint);
        let kind = match repo.repo_type {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        };
        let mut body =
            json!({ "name": repo.id.name(), "organization": repo.id.owner(), "type": kind, "private": private });
        if repo.repo_type == RepoType::Space {
            body["sdk"] = json!("static");
        }
        match self.call("POST", &url, self.request("POST", &url), Body::Json(body)) {
            Ok(_) => Ok(true),
            Err(HubError::Status { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists `path` (empty for the root) in the repo, following pagination.
    pub fn list_tree(&self, repo: &Repo, path: &str, recursive: bool) -> Result<Vec<TreeEntry>, HubError> {
        let mut url = self.api_url(repo, "tree");
        if !path.is_empty() {
            url.push('/');
            url.push_str(&encode_path(path.trim_matches('/')));
        }
        if recursive {
            url.push_str("?recursive=true");
        }
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let resp = self.call("GET", &url, self.request("GET", &url), Body::None)?;
            next = resp.header("link").and_then(next_link);
            out.extend(Self::read_json::<Vec<TreeEntry>>(&url, resp)?);
        }
        Ok(out)
    }

    /// The commit a revision resolves to and the repo's files at it.
    pub fn repo_info(&self, repo: &Repo) -> Result<RepoInfo, HubError> {
        let url = self.api_url(repo, "revision");
        let resp = self.call("GET", &url, self.request("GET", &url), Body::None)?;
        Self::read_json(&url, resp)
    }

    /// Downloads a file's bytes.
    pub fn download(&self, repo: &Repo, path: &str) -> Result<Vec<u8>, HubError> {
        let mut buf = Vec::new();
        self.download_to(repo, path, &mut buf, |_, _| {})?;
        Ok(buf)
    }

    /// Streams a file into `out`, calling `progress(bytes so far, total if known)`; returns the
    /// byte count.
    pub fn download_to(
        &self,
        repo: &Repo,
        path: &str,
        out: &mut impl Write,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64, HubError> {
        let url = self.file_url(repo, path);
        let req = self.authorize(self.transfer_agent.get(&url));
        let resp = self.call("GET", &url, req, Body::None)?;
        let total = resp.header("content-length").and_then(|s| s.parse().ok());
        let transport =
            |e: std::io::Error| HubError::Transport { method: "GET", url: url.clone(), reason: e.to_string() };
        let mut reader = resp.into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(transport)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(transport)?;
            done += n as u64;
            progress(done, total);
        }
        if total.is_some_and(|t| t != done) {
            return Err(transport(std::io::Error::other(format!("got {done} of {} bytes", total.unwrap_or(0)))));
        }
        Ok(done)
    }

    /// `HEAD` on a file; `None` when it does not exist. Read from the Hub's own answer, before
    /// any redirect to a CDN (which has its own etag and size headers).
    pub fn file_metadata(&self, repo: &Repo, path: &str) -> Result<Option<FileMeta>, HubError> {
        let url = self.file_url(repo, path);
        let req = self.authorize(self.head_agent.request("HEAD", &url));
        match self.call("HEAD", &url, req, Body::None) {
            Ok(resp) => {
                let h = |n: &str| resp.header(n).map(|s| s.trim_start_matches("W/").trim_matches('"').to_owned());
                Ok(Some(FileMeta {
                    etag: h("x-linked-etag").or_else(|| h("etag")),
                    size: h("x-linked-size").or_else(|| h("content-length")).and_then(|s| s.parse().ok()),
                    commit: h("x-repo-commit"),
                }))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

enum Body<'a> {
    None,
    Json(serde_json::Value),
    Bytes(&'static str, &'a [u8]),
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part[start..end].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_links() {
        let c = HubClient::new(HubConfig { token: Some("hf_secret".into()), ..HubConfig::new("http://h/") });
        let repo = Repo::dataset("o/n".parse().unwrap());
        assert_eq!(c.api_url(&repo, "commit"), "http://h/api/datasets/o/n/commit/main");
        assert_eq!(c.file_url(&repo, "data/a b.jsonl"), "http://h/datasets/o/n/resolve/main/data/a%20b.jsonl");
        assert_eq!(c.file_url(&Repo::model("o/m".parse().unwrap()), "x.json"), "http://h/o/m/resolve/main/x.json");
        assert!(!format!("{c:?}").contains("hf_secret"));
        assert_eq!(next_link("<http://h/next?c=1>; rel=\"next\""), Some("http://h/next?c=1".into()));
        assert_eq!(next_link("<http://h/p>; rel=\"prev\""), None);
    }
}
