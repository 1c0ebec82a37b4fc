//! Helpers shared by the server's integration tests.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use sentiment_server::feedback_log::sync::SyncStatus;
use sentiment_server::feedback_log::{FeedbackLog, LogConfig};
use sentiment_server::http::{self, AppState, ServerConfig};
use shared::Clock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

/// A fresh empty directory under the system temp dir (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "sentiment-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A UUID-shaped id from a number.
pub fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{:012x}", n)
}

pub fn body(id: &str, text: &str, predicted: &str, label: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "text": text, "predicted": predicted,
        "scores": {"negative": 0.1, "neutral": 0.2, "positive": 0.7},
        "label": label, "model_version": version,
    })
}

pub fn valid(n: u64) -> serde_json::Value {
    body(&uuid(n), "the service was great", "positive", "neutral", "v1")
}

/// A test app over a log in `dir`, with a settable clock (ms since epoch).
pub struct TestApp {
    pub router: Router,
    pub log: FeedbackLog,
    pub clock: Arc<AtomicI64>,
}

pub fn test_app(dir: &std::path::Path, config: ServerConfig) -> TestApp {
    test_app_with_sync(dir, config, SyncStatus::disabled())
}

pub fn test_app_with_sync(dir: &std::path::Path, config: ServerConfig, sync: Arc<SyncStatus>) -> TestApp {
    let log = FeedbackLog::open(LogConfig::new(dir)).unwrap();
    let clock = Arc::new(AtomicI64::new(1_795_000_000_000)); // 2026-11-18
    let c = clock.clone();
    let state = AppState::new(log.clone(), config, sync, Clock::from_fn(move || c.load(Ordering::Relaxed)));
    TestApp { router: http::app(state), log, clock }
}

/// `req` as if it came over a connection from `peer` (what `http::serve` adds).
pub fn from_peer(mut req: Request<Body>, peer: &str) -> Request<Body> {
    let addr: std::net::SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    req
}

pub async fn send(router: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp: Response<Body> = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, headers, bytes.to_vec())
}

pub fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(body.into()).unwrap()
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Every line of every segment file in `data_dir`, parsed.
pub fn stored_records(data_dir: &std::path::Path) -> Vec<shared::FeedbackRecord> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}
