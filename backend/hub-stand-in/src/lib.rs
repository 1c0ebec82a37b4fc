//! A local stand-in for the Hub's HTTP API (repos of any type): `revision` (repo info),
//! `preupload`, NDJSON `commit` (with `parentCommit` and `deletedFile`), LFS batch (basic
//! transfer), `tree` listing in pages (as the Hub: a `cursor` query parameter and a
//! `Link: <...>; rel="next"` header) and `resolve` (GET and HEAD). It keeps files in memory, with
//! every commit's tree, so a revision may be a branch (`main`) or any commit id (or its first 7+
//! hex digits), as on the Hub. Like the Hub, `resolve` on an LFS file answers with a redirect to
//! a separate content-delivery origin (a second listener, [`HubStandIn::cdn_endpoint`]), and
//! both origins answer browsers with the CORS and CORP headers that let a cross-origin-isolated
//! page fetch a model from them. It can fail on purpose: 5xx on chosen commits, a commit that is
//! applied but whose answer is lost, refused connections and hanging requests.
//! `scripts/hub-contract.sh` checks it against the official Python client.
//!
//! Control endpoints (not part of the Hub API): `GET/PUT /_fake/faults` (a [`Faults`] as JSON).

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the stand-in does wrong, changeable while it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Every `n`-th commit request (1-based count) fails with 500 before applying anything.
    pub fail_commit_every: u64,
    /// Every `n`-th commit request is applied, then answered with 500 (the answer is "lost").
    pub lose_commit_reply_every: u64,
    /// Refuse new connections (accept and drop them) and hang requests on open connections.
    pub down: bool,
    /// Every request waits this long before being handled (client timeouts).
    pub delay_ms: u64,
    /// Files at least this large must go through LFS (0 = never).
    pub lfs_threshold: u64,
    /// Answer every file download (`resolve`, GET and HEAD) with 500: shows what a client takes
    /// from its cache.
    pub fail_downloads: bool,
    /// Entries per page of a tree listing (0 = the Hub's 1,000).
    pub tree_page_size: usize,
    /// With `down`: come back up by itself after this many ms (a script cannot reach the control
    /// endpoint while new connections are refused).
    pub down_for_ms: u64,
}

#[derive(Debug, Clone)]
struct StoredFile {
    /// Shared with the trees of earlier commits that hold the same file.
    content: Arc<Vec<u8>>,
    lfs: bool,
}

type Tree = BTreeMap<String, StoredFile>;

#[derive(Debug, Default)]
struct RepoState {
    files: Tree,
    head: String,
    commits: u64,
    /// Every commit's id and tree, oldest first (what `revision=<commit>` reads).
    history: Vec<(String, Tree)>,
    /// A Space's variables (`/api/spaces/<id>/variables`): name → value.
    variables: BTreeMap<String, String>,
}

impl RepoState {
    /// The tree at `rev`: `main`, a commit id, or a commit id's first 7+ hex digits; `None`
    /// for an unknown revision (the Hub answers 404 `RevisionNotFound`).
    fn tree_at(&self, rev: &str) -> Option<Tree> {
        if rev == "main" || rev == head_or_initial(self) {
            return Some(self.files.clone());
        }
        let prefix_of = |oid: &str| rev.len() >= 7 && oid.starts_with(rev);
        if let Some((_, tree)) = self.history.iter().rev().find(|(oid, _)| prefix_of(oid)) {
            return Some(tree.clone());
        }
        prefix_of(&"0".repeat(40)).then(Tree::new)
    }
}

fn revision_not_found() -> Response {
    let mut r = hub_error(StatusCode::NOT_FOUND, "Invalid rev id");
    r.headers_mut().insert("x-error-code", HeaderValue::from_static("RevisionNotFound"));
    r
}

#[derive(Debug, Default)]
struct StandInState {
    repos: Mutex<HashMap<String, RepoState>>,
    lfs_objects: Mutex<HashMap<String, Vec<u8>>>,
    faults: Mutex<Faults>,
    commit_requests: AtomicU64,
    commits_applied: AtomicU64,
    /// Largest commit applied: (files added or deleted, request body bytes).
    largest_commit: Mutex<(usize, usize)>,
    addr: Mutex<Option<SocketAddr>>,
    /// The content-delivery origin LFS downloads are redirected to.
    cdn: OnceLock<SocketAddr>,
}

/// A running Hub stand-in.
#[derive(Clone)]
pub struct HubStandIn {
    state: Arc<StandInState>,
    addr: SocketAddr,
}

impl HubStandIn {
    /// Binds `addr` (use port 0 for any) and serves in the background on the current runtime.
    /// The content-delivery origin listens on the same address, another port.
    pub async fn start(addr: SocketAddr, faults: Faults) -> std::io::Result<HubStandIn> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let cdn_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
        let state = Arc::new(StandInState { faults: Mutex::new(faults), ..Default::default() });
        *state.addr.lock().expect("lock") = Some(addr);
        state.cdn.set(cdn_listener.local_addr()?).expect("set once");
        let app = router(state.clone());
        let listener = DroppingListener { inner: listener, state: state.clone() };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let cdn = cdn_router(state.clone());
        let cdn_listener = DroppingListener { inner: cdn_listener, state: state.clone() };
        tokio::spawn(async move {
            let _ = axum::serve(cdn_listener, cdn).await;
        });
        Ok(HubStandIn { state, addr })
    }

    /// `http://127.0.0.1:port`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The content-delivery origin (`http://127.0.0.1:port`) that `resolve` redirects LFS files to.
    pub fn cdn_endpoint(&self) -> String {
        format!("http://{}", self.state.cdn.get().expect("set at start"))
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().expect("lock") = faults;
    }

    pub fn faults(&self) -> Faults {
        self.state.faults.lock().expect("lock").clone()
    }

    /// Files of a repo (`"datasets/owner/name"`), path → content.
    pub fn files(&self, repo_key: &str) -> BTreeMap<String, Vec<u8>> {
        let repos = self.state.repos.lock().expect("lock");
        repos
            .get(repo_key)
            .map(|r| r.files.iter().map(|(p, f)| (p.clone(), f.content.to_vec())).collect())
            .unwrap_or_default()
    }

    /// Creates an empty repo (`"datasets/owner/name"`); writes to a missing repo get 404 like on the Hub.
    pub fn create_repo(&self, repo_key: &str) {
        self.state.repos.lock().expect("lock").entry(repo_key.to_owned()).or_default();
    }

    /// The largest commit applied so far: (files, request body bytes).
    pub fn largest_commit(&self) -> (usize, usize) {
        *self.state.largest_commit.lock().expect("lock")
    }

    /// (commit requests received, commits applied).
    pub fn commit_counts(&self) -> (u64, u64) {
        (self.state.commit_requests.load(Ordering::Relaxed), self.state.commits_applied.load(Ordering::Relaxed))
    }
}

/// Accepts connections, but drops them at once while the stand-in is `down`.
struct DroppingListener {
    inner: tokio::net::TcpListener,
    state: Arc<StandInState>,
}

impl axum::serve::Listener for DroppingListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.state.faults.lock().expect("lock").down {
                        drop(stream);
                        continue;
                    }
                    return (stream, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Largest request body the stand-in reads (it keeps everything in memory).
const MAX_BODY_BYTES: usize = 1 << 30;

fn router(state: Arc<StandInState>) -> Router {
    Router::new()
        .route("/_fake/faults", get(get_faults).put(put_faults))
        .route("/api/{rtype}/{owner}/{name}/preupload/{rev}", post(preupload))
        .route("/api/{rtype}/{owner}/{name}/commit/{rev}", post(commit))
        .route("/api/{rtype}/{owner}/{name}", get(repo_info))
        .route("/api/{rtype}/{owner}/{name}/revision/{rev}", get(revision))
        .route("/api/{rtype}/{owner}/{name}/tree/{rev}", get(tree_root))
        .route("/api/{rtype}/{owner}/{name}/tree/{rev}/{*path}", get(tree))
        .route("/api/repos/create", post(create_repo))
        .route("/api/spaces/{owner}/{name}/variables", get(space_variables).post(add_space_variable))
        .route("/api/validate-yaml", post(validate_yaml))
        .route("/{a}/{b}/{c}/resolve/{rev}/{*path}", get(resolve_typed).head(resolve_typed))
        .route("/{a}/{b}/resolve/{rev}/{*path}", get(resolve_model).head(resolve_model))
        .route("/{a}/{b}/{c}/info/lfs/objects/batch", post(lfs_batch))
        .route("/{a}/{b}/info/lfs/objects/batch", post(lfs_batch_model))
        .route("/_fake/lfs/{oid}", put(lfs_put))
        .route("/_fake/lfs/{oid}/verify", post(lfs_verify))
        .layer(axum::middleware::from_fn_with_state(state.clone(), faults_layer))
        .layer(axum::middleware::from_fn(hub_cors))
        // The Hub takes LFS objects of gigabytes and commits of megabytes; axum's default limit
        // of 2 MB refused a large log segment's upload with 413.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn faults_layer(State(st): State<Arc<StandInState>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/_fake/faults") {
        let f = st.faults.lock().expect("lock").clone();
        if f.down {
            // Hang until the client gives up (its connection was opened before the outage).
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if f.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
    }
    next.run(req).await
}

async fn get_faults(State(st): State<Arc<StandInState>>) -> Json<Faults> {
    Json(st.faults.lock().expect("lock").clone())
}

async fn put_faults(State(st): State<Arc<StandInState>>, Json(f): Json<Faults>) -> StatusCode {
    if f.down && f.down_for_ms > 0 {
        let (st, after) = (st.clone(), Duration::from_millis(f.down_for_ms));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut faults = st.faults.lock().expect("lock");
            faults.down = false;
            faults.down_for_ms = 0;
        });
    }
    *st.faults.lock().expect("lock") = f;
    StatusCode::NO_CONTENT
}

fn hub_error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, Json(json!({ "error": msg }))).into_response();
    r.headers_mut().insert("x-error-message", HeaderValue::from_str(msg).unwrap_or(HeaderValue::from_static("error")));
    r
}

fn repo_key(rtype: &str, owner: &str, name: &str) -> String {
    format!("{rtype}/{owner}/{name}")
}

/// `Some(error response)` unless `rtype` is a repo type.
fn check_type(rtype: &str) -> Option<Response> {
    match rtype {
        "models" | "datasets" | "spaces" => None,
        _ => Some(hub_error(StatusCode::NOT_FOUND, "unknown repo type")),
    }
}

fn git_blob_oid(content: &[u8]) -> String {
    // Not git's sha1: a stable content id is all the stand-in needs.
    let mut v = format!("blob {}\0", content.len()).into_bytes();
    v.extend_from_slice(content);
    shared::sha256_hex(&v)[..40].to_owned()
}

async fn create_repo(State(st): State<Arc<StandInState>>, Json(body): Json<Value>) -> Response {
    let rtype = match body["type"].as_str().unwrap_or("model") {
        "dataset" => "datasets",
        "space" => "spaces",
        _ => "models",
    };
    let name = body["name"].as_str().unwrap_or("");
    let owner = body["organization"].as_str().unwrap_or("user");
    let id = if name.contains('/') { name.to_owned() } else { format!("{owner}/{name}") };
    let key = format!("{rtype}/{id}");
    let addr = st.addr.lock().expect("lock").map(|a| a.to_string()).unwrap_or_default();
    let url = format!("http://{addr}/{}{id}", if rtype == "models" { "".to_owned() } else { format!("{rtype}/") });
    let mut repos = st.repos.lock().expect("lock");
    if repos.contains_key(&key) {
        // Like the Hub: 409, and the body still names the repo's URL.
        return (StatusCode::CONFLICT, Json(json!({ "error": "You already created this repo", "url": url })))
            .into_response();
    }
    repos.insert(key, RepoState::default());
    Json(json!({ "url": url })).into_response()
}

#[derive(Deserialize)]
struct ValidateYaml {
    content: String,
}

/// `POST /api/validate-yaml`, which `huggingface_hub` (2.x) calls before uploading a README.md:
/// `{"errors": [], "warnings": []}`. The stand-in checks only that a front matter that opens
/// also closes (the Hub parses the YAML and checks the metadata too).
async fn validate_yaml(Json(body): Json<ValidateYaml>) -> Response {
    let text = body.content.replace("\r\n", "\n");
    let unterminated =
        text.strip_prefix("---\n").is_some_and(|rest| !rest.contains("\n---") && !rest.starts_with("---"));
    if unterminated {
        let errors = json!([{ "message": "the YAML front matter is not closed with ---" }]);
        return (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors, "warnings": [] }))).into_response();
    }
    Json(json!({ "errors": [], "warnings": [] })).into_response()
}

/// A Space's variables as the Hub lists them: `{name: {"value", "description"}}`.
fn variables_json(repo: &RepoState) -> Value {
    repo.variables.iter().map(|(k, v)| (k.clone(), json!({ "value": v, "description": Value::Null }))).collect()
}

async fn space_variables(
    State(st): State<Arc<StandInState>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_write(&st, &headers, "spaces", &owner, &name) {
        return r;
    }
    let repos = st.repos.lock().expect("lock");
    Json(variables_json(&repos[&repo_key("spaces", &owner, &name)])).into_response()
}

#[derive(Deserialize)]
struct SpaceVariable {
    key: String,
    value: String,
}

async fn add_space_variable(
    State(st): State<Arc<StandInState>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(var): Json<SpaceVariable>,
) -> Response {
    if let Some(r) = check_write(&st, &headers, "spaces", &owner, &name) {
        return r;
    }
    let mut repos = st.repos.lock().expect("lock");
    let repo = repos.get_mut(&repo_key("spaces", &owner, &name)).expect("checked");
    repo.variables.insert(var.key, var.value);
    Json(variables_json(repo)).into_response()
}

#[derive(Deserialize)]
struct PreuploadBody {
    files: Vec<PreuploadFile>,
}

#[derive(Deserialize)]
struct PreuploadFile {
    path: String,
    size: u64,
}

/// Writes need a token (any non-empty bearer token) and an existing repo, as on the Hub.
fn check_write(st: &StandInState, headers: &HeaderMap, rtype: &str, owner: &str, name: &str) -> Option<Response> {
    if let Some(r) = check_type(rtype) {
        return Some(r);
    }
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth.strip_prefix("Bearer ").is_none_or(|t| t.trim().is_empty()) {
        return Some(hub_error(StatusCode::UNAUTHORIZED, "Invalid credentials in Authorization header"));
    }
    if !st.repos.lock().expect("lock").contains_key(&repo_key(rtype, owner, name)) {
        return Some(hub_error(StatusCode::NOT_FOUND, "Repository not found"));
    }
    None
}

async fn preupload(
    State(st): State<Arc<StandInState>>,
    Path((rtype, owner, name, _rev)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<PreuploadBody>,
) -> Response {
    if let Some(r) = check_write(&st, &headers, &rtype, &owner, &name) {
        return r;
    }
    let threshold = st.faults.lock().expect("lock").lfs_threshold;
    let files: Vec<Value> = body
        .files
        .iter()
        .map(|f| {
            let lfs = threshold > 0 && f.size >= threshold;
            json!({ "path": f.path, "uploadMode": if lfs { "lfs" } else { "regular" }, "shouldIgnore": false })
        })
        .collect();
    Json(json!({ "files": files, "commitOid": Value::Null })).into_response()
}

async fn commit(
    State(st): State<Arc<StandInState>>,
    Path((rtype, owner, name, _rev)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check_write(&st, &headers, &rtype, &owner, &name) {
        return r;
    }
    let n = st.commit_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let f = st.faults.lock().expect("lock").clone();
    if f.fail_commit_every > 0 && n % f.fail_commit_every == 0 {
        return hub_error(StatusCode::INTERNAL_SERVER_ERROR, "injected failure before commit");
    }
    // Parse every line before touching the repo: a commit is all or nothing.
    let mut adds = Vec::new();
    let mut deletes = Vec::new();
    let mut summary = String::new();
    let mut parent: Option<String> = None;
    for (i, line) in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return hub_error(StatusCode::BAD_REQUEST, "line is not JSON");
        };
        let val = &v["value"];
        match (i, v["key"].as_str()) {
            (0, Some("header")) => {
                summary = val["summary"].as_str().unwrap_or("").to_owned();
                parent = val["parentCommit"].as_str().map(str::to_owned);
            }
            (0, _) => return hub_error(StatusCode::BAD_REQUEST, "first line must be the header"),
            (_, Some("file")) => {
                let (Some(path), Some(content)) = (val["path"].as_str(), val["content"].as_str()) else {
                    return hub_error(StatusCode::BAD_REQUEST, "file needs path and content");
                };
                if val["encoding"].as_str() != Some("base64") {
                    return hub_error(StatusCode::BAD_REQUEST, "only base64 encoding");
                }
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(content) else {
                    return hub_error(StatusCode::BAD_REQUEST, "bad base64");
                };
                adds.push((path.to_owned(), StoredFile { content: Arc::new(bytes), lfs: false }));
            }
            (_, Some("lfsFile")) => {
                let (Some(path), Some(oid)) = (val["path"].as_str(), val["oid"].as_str()) else {
                    return hub_error(StatusCode::BAD_REQUEST, "lfsFile needs path and oid");
                };
                let Some(content) = st.lfs_objects.lock().expect("lock").get(oid).cloned() else {
                    return hub_error(StatusCode::BAD_REQUEST, "LFS object was not uploaded");
                };
                adds.push((path.to_owned(), StoredFile { content: Arc::new(content), lfs: true }));
            }
            (_, Some("deletedFile")) => deletes.push(val["path"].as_str().unwrap_or("").to_owned()),
            _ => return hub_error(StatusCode::BAD_REQUEST, "unknown operation"),
        }
    }
    if summary.is_empty() {
        return hub_error(StatusCode::BAD_REQUEST, "commit needs a summary");
    }
    let key = repo_key(&rtype, &owner, &name);
    {
        let mut largest = st.largest_commit.lock().expect("lock");
        let this = (adds.len() + deletes.len(), body.len());
        *largest = (largest.0.max(this.0), largest.1.max(this.1));
    }
    let oid = {
        let mut repos = st.repos.lock().expect("lock");
        let Some(repo) = repos.get_mut(&key) else {
            return hub_error(StatusCode::NOT_FOUND, "Repository not found");
        };
        // The Hub refuses a commit whose parent is no longer the branch's head, with these words
        // (huggingface_hub's tests/test_hf_api.py, test_create_commit_conflict); a short id of
        // at least 7 hex digits names a commit too.
        if let Some(parent) = &parent {
            let head = head_or_initial(repo);
            if parent.len() < 7 || !head.starts_with(parent.as_str()) {
                return hub_error(
                    StatusCode::PRECONDITION_FAILED,
                    "A commit has happened since. Please refresh and try again.",
                );
            }
        }
        if let Some(path) = deletes.iter().find(|p| !repo.files.contains_key(*p) && !adds.iter().any(|(a, _)| a == *p))
        {
            // The Hub refuses to delete a file that is not there; nothing is applied.
            return hub_error(StatusCode::NOT_FOUND, &format!("File not found: {path}"));
        }
        for (path, file) in adds {
            repo.files.insert(path, file);
        }
        for path in deletes {
            repo.files.remove(&path);
        }
        repo.commits += 1;
        repo.head = shared::sha256_hex(format!("{}{}{summary}", repo.head, repo.commits).as_bytes())[..40].to_owned();
        let tree = repo.files.clone();
        repo.history.push((repo.head.clone(), tree));
        repo.head.clone()
    };
    st.commits_applied.fetch_add(1, Ordering::SeqCst);
    if f.lose_commit_reply_every > 0 && n % f.lose_commit_reply_every == 0 {
        return hub_error(StatusCode::BAD_GATEWAY, "injected failure after commit");
    }
    let prefix = if rtype == "models" { String::new() } else { format!("{rtype}/") };
    let addr = st.addr.lock().expect("lock").map(|a| a.to_string()).unwrap_or_default();
    Json(json!({
        "success": true,
        "commitOid": oid,
        "commitUrl": format!("http://{addr}/{prefix}{owner}/{name}/commit/{oid}"),
    }))
    .into_response()
}

/// Repo info at a revision: the head commit and every file (one branch: any revision is it).
async fn revision(
    State(st): State<Arc<StandInState>>,
    Path((rtype, owner, name, rev)): Path<(String, String, String, String)>,
) -> Response {
    if let Some(r) = check_type(&rtype) {
        return r;
    }
    let repos = st.repos.lock().expect("lock");
    let Some(repo) = repos.get(&repo_key(&rtype, &owner, &name)) else {
        return hub_error(StatusCode::NOT_FOUND, "Repository not found");
    };
    let Some(files) = repo.tree_at(&rev) else {
        return revision_not_found();
    };
    let sha = commit_of(repo, &rev);
    let siblings: Vec<Value> = files.keys().map(|p| json!({ "rfilename": p })).collect();
    Json(json!({ "id": format!("{owner}/{name}"), "sha": sha, "siblings": siblings })).into_response()
}

/// The full id of the commit `rev` names (the head for `main`).
fn commit_of(repo: &RepoState, rev: &str) -> String {
    let head = head_or_initial(repo);
    if rev == "main" || head.starts_with(rev) {
        return head;
    }
    repo.history.iter().rev().map(|(oid, _)| oid).find(|oid| oid.starts_with(rev)).cloned().unwrap_or(head)
}

/// Repo info without a revision: the default branch's (as `revision/main`).
async fn repo_info(
    st: State<Arc<StandInState>>,
    Path((rtype, owner, name)): Path<(String, String, String)>,
) -> Response {
    revision(st, Path((rtype, owner, name, "main".to_owned()))).await
}

/// A repo's head commit; a fixed id before its first commit (the Hub makes an initial commit).
fn head_or_initial(repo: &RepoState) -> String {
    if repo.head.is_empty() {
        "0".repeat(40)
    } else {
        repo.head.clone()
    }
}

#[derive(Deserialize)]
struct TreeQuery {
    #[serde(default)]
    recursive: Option<String>,
    /// Where the previous page ended (opaque to clients: base64 of the last path it listed).
    #[serde(default)]
    cursor: Option<String>,
}

/// The Hub's page size for tree listings without `expand`.
const HUB_TREE_PAGE: usize = 1000;

async fn tree_root(
    st: State<Arc<StandInState>>,
    Path((rtype, owner, name, rev)): Path<(String, String, String, String)>,
    q: Query<TreeQuery>,
    uri: axum::http::Uri,
) -> Response {
    tree(st, Path((rtype, owner, name, rev, String::new())), q, uri).await
}

/// One page of a tree listing, entries sorted by path; the next page starts after the cursor's
/// path, so files added or removed between pages (a compaction) never make an entry repeat.
async fn tree(
    State(st): State<Arc<StandInState>>,
    Path((rtype, owner, name, rev, path)): Path<(String, String, String, String, String)>,
    Query(q): Query<TreeQuery>,
    uri: axum::http::Uri,
) -> Response {
    if let Some(r) = check_type(&rtype) {
        return r;
    }
    let recursive = q.recursive.as_deref().is_some_and(|r| matches!(r.to_ascii_lowercase().as_str(), "1" | "true"));
    let repos = st.repos.lock().expect("lock");
    let Some(repo) = repos.get(&repo_key(&rtype, &owner, &name)) else {
        return hub_error(StatusCode::NOT_FOUND, "Repository not found");
    };
    let Some(files) = repo.tree_at(&rev) else {
        return revision_not_found();
    };
    let prefix = if path.is_empty() { String::new() } else { format!("{}/", path.trim_matches('/')) };
    let mut dirs = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (p, f) in &files {
        let Some(rest) = p.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        for i in 1..parts.len() {
            if recursive || i == 1 {
                dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
            }
        }
        if recursive || parts.len() == 1 {
            let mut e = json!({ "type": "file", "oid": git_blob_oid(&f.content), "size": f.content.len(), "path": p });
            if f.lfs {
                e["lfs"] =
                    json!({ "oid": shared::sha256_hex(&f.content), "size": f.content.len(), "pointerSize": 134 });
            }
            entries.push(e);
        }
    }
    if !path.is_empty() && entries.is_empty() && dirs.is_empty() {
        return hub_error(StatusCode::NOT_FOUND, "Entry not found");
    }
    let page_size = match st.faults.lock().expect("lock").tree_page_size {
        0 => HUB_TREE_PAGE,
        n => n,
    };
    drop(repos);
    let mut out: Vec<Value> =
        dirs.into_iter().map(|d| json!({ "type": "directory", "oid": "0".repeat(40), "size": 0, "path": d })).collect();
    out.extend(entries);
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let after = q
        .cursor
        .as_deref()
        .and_then(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some(after) = &after {
        out.retain(|e| e["path"].as_str().is_some_and(|p| p > after.as_str()));
    }
    let more = out.len() > page_size;
    out.truncate(page_size);
    let mut resp = Json(&out).into_response();
    if more {
        let last = out.last().and_then(|e| e["path"].as_str()).unwrap_or_default();
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last);
        let query: Vec<&str> =
            uri.query().unwrap_or("").split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("cursor=")).collect();
        let addr = st.addr.lock().expect("lock").map(|a| a.to_string()).unwrap_or_default();
        let mut next = format!("http://{addr}{}?", uri.path());
        for kv in query {
            next.push_str(kv);
            next.push('&');
        }
        next.push_str(&format!("cursor={cursor}"));
        resp.headers_mut()
            .insert(header::LINK, HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")).expect("ascii link"));
    }
    resp
}

async fn resolve_typed(
    st: State<Arc<StandInState>>,
    method: Method,
    Path((prefix, owner, name, rev, path)): Path<(String, String, String, String, String)>,
) -> Response {
    if prefix != "datasets" && prefix != "spaces" {
        return hub_error(StatusCode::NOT_FOUND, "unknown repo type");
    }
    resolve(st, method, &prefix, &owner, &name, &rev, &path)
}

async fn resolve_model(
    st: State<Arc<StandInState>>,
    method: Method,
    Path((owner, name, rev, path)): Path<(String, String, String, String)>,
) -> Response {
    resolve(st, method, "models", &owner, &name, &rev, &path)
}

fn resolve(
    State(st): State<Arc<StandInState>>,
    method: Method,
    rtype: &str,
    owner: &str,
    name: &str,
    rev: &str,
    path: &str,
) -> Response {
    if st.faults.lock().expect("lock").fail_downloads {
        return hub_error(StatusCode::INTERNAL_SERVER_ERROR, "injected download failure");
    }
    let repos = st.repos.lock().expect("lock");
    let Some(repo) = repos.get(&repo_key(rtype, owner, name)) else {
        return hub_error(StatusCode::NOT_FOUND, "Repository not found");
    };
    let Some(files) = repo.tree_at(rev) else {
        return revision_not_found();
    };
    let Some(file) = files.get(path) else {
        let mut r = hub_error(StatusCode::NOT_FOUND, "Entry not found");
        r.headers_mut().insert("x-error-code", HeaderValue::from_static("EntryNotFound"));
        return r;
    };
    let etag = if file.lfs { shared::sha256_hex(&file.content) } else { git_blob_oid(&file.content) };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{etag}\"")).expect("hex"));
    headers.insert("x-repo-commit", HeaderValue::from_str(&commit_of(repo, rev)).expect("hex"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if file.lfs {
        headers.insert("x-linked-etag", HeaderValue::from_str(&format!("\"{etag}\"")).expect("hex"));
        headers.insert("x-linked-size", HeaderValue::from(file.content.len()));
    }
    if file.lfs {
        // As the Hub: LFS content comes from the content-delivery origin.
        let cdn = st.cdn.get().expect("set at start");
        headers.insert(header::LOCATION, HeaderValue::from_str(&format!("http://{cdn}/_cdn/{etag}")).expect("url"));
        return (StatusCode::FOUND, headers).into_response();
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.content.len()));
    if method == Method::HEAD {
        return (StatusCode::OK, headers).into_response();
    }
    (StatusCode::OK, headers, file.content.to_vec()).into_response()
}

/// The Hub's answers carry CORS headers for any page (the requesting origin, echoed) and expose
/// the headers clients read; a preflight is answered here. Browsers need this to follow
/// `resolve` from a page on another origin.
async fn hub_cors(req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = resp.headers_mut();
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag",
            ),
        );
        if preflight {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET,HEAD,OPTIONS"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization,range,content-type"),
            );
        }
    }
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    resp
}

/// The content-delivery origin: LFS objects by sha256, to anyone (`access-control-allow-origin:
/// *`), embeddable by cross-origin-isolated pages (`cross-origin-resource-policy: cross-origin`).
fn cdn_router(state: Arc<StandInState>) -> Router {
    Router::new()
        .route("/_cdn/{oid}", get(cdn_get).head(cdn_get).options(cdn_preflight))
        .layer(axum::middleware::from_fn_with_state(state.clone(), faults_layer))
        .with_state(state)
}

fn cdn_headers(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag,Content-Length,Content-Range,Accept-Ranges"),
    );
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
}

async fn cdn_get(State(st): State<Arc<StandInState>>, method: Method, Path(oid): Path<String>) -> Response {
    if st.faults.lock().expect("lock").fail_downloads {
        return hub_error(StatusCode::INTERNAL_SERVER_ERROR, "injected download failure");
    }
    let Some(content) = st.lfs_objects.lock().expect("lock").get(&oid).cloned() else {
        return (StatusCode::NOT_FOUND, "NoSuchKey").into_response();
    };
    let mut headers = HeaderMap::new();
    cdn_headers(&mut headers);
    headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{oid}\"")).expect("hex"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.len()));
    if method == Method::HEAD {
        return (StatusCode::OK, headers).into_response();
    }
    (StatusCode::OK, headers, content).into_response()
}

async fn cdn_preflight() -> Response {
    let mut headers = HeaderMap::new();
    cdn_headers(&mut headers);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET,HEAD,OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("range,content-type"));
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// Model repos have no type prefix: `/{owner}/{name}.git/info/lfs/objects/batch`.
async fn lfs_batch_model(
    st: State<Arc<StandInState>>,
    Path((owner, repo_git)): Path<(String, String)>,
    body: Json<Value>,
) -> Response {
    lfs_batch(st, Path(("models".into(), owner, repo_git)), body).await
}

async fn lfs_batch(
    State(st): State<Arc<StandInState>>,
    Path((_prefix, _owner, repo_git)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if !repo_git.ends_with(".git") {
        return hub_error(StatusCode::NOT_FOUND, "not a git path");
    }
    let addr = st.addr.lock().expect("lock").map(|a| a.to_string()).unwrap_or_default();
    let have = st.lfs_objects.lock().expect("lock");
    let objects: Vec<Value> = body["objects"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let oid = o["oid"].as_str().unwrap_or("");
            let size = o["size"].as_u64().unwrap_or(0);
            if have.contains_key(oid) {
                json!({ "oid": oid, "size": size })
            } else {
                json!({ "oid": oid, "size": size, "authenticated": true, "actions": {
                    "upload": { "href": format!("http://{addr}/_fake/lfs/{oid}"), "header": {} },
                    "verify": { "href": format!("http://{addr}/_fake/lfs/{oid}/verify") },
                } })
            }
        })
        .collect();
    let mut r = Json(json!({ "transfer": "basic", "objects": objects })).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.git-lfs+json"));
    r
}

async fn lfs_put(State(st): State<Arc<StandInState>>, Path(oid): Path<String>, body: Bytes) -> Response {
    if shared::sha256_hex(&body) != oid {
        return hub_error(StatusCode::BAD_REQUEST, "content does not match oid");
    }
    st.lfs_objects.lock().expect("lock").insert(oid, body.to_vec());
    StatusCode::OK.into_response()
}

async fn lfs_verify(State(st): State<Arc<StandInState>>, Path(oid): Path<String>) -> Response {
    if st.lfs_objects.lock().expect("lock").contains_key(&oid) {
        Json(json!({ "ok": true })).into_response()
    } else {
        hub_error(StatusCode::NOT_FOUND, "object not uploaded")
    }
}
