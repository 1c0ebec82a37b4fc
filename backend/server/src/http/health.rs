//! Health: one word in public (`ok`, `degraded`, `failing`), the reasons only for the operator.
//!
//! `GET /healthz` answers `{"status": ...}` and nothing else (200, or 503 when failing): the
//! internet sees no error text, Hub URL, dataset name or path. `GET /healthz/details` adds the
//! reasons, the sync state and the data dir, and answers only a local client (a loopback peer
//! whose request no proxy forwarded) or one with `Authorization: Bearer $SENTIMENT_ADMIN_TOKEN`.

use super::{AppError, AppState};
use crate::data_dir::Persistence;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Serving and storing, but something needs the operator (sync failing for long, records at
    /// risk on ephemeral storage).
    Degraded,
    /// Cannot store records.
    Failing,
}

/// The status and the reasons behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub status: Status,
    pub reasons: Vec<String>,
}

/// Computes the health now.
pub fn check(state: &AppState) -> Health {
    let inner = &state.inner;
    let mut reasons = Vec::new();
    let mut status = Status::Ok;
    if !inner.log.healthy() {
        status = Status::Failing;
        reasons.push("the feedback log cannot write (see the log for the error)".to_owned());
    }
    let now = inner.clock.now_ms();
    let sync = &inner.sync;
    let failing_for = sync.failing_for_ms(now);
    let degraded_after = inner.config.sync_degraded_after.as_millis() as i64;
    if sync.enabled && failing_for > degraded_after {
        status = status.max_with(Status::Degraded);
        reasons.push(format!(
            "Hub sync has failed for {} (over {}): {}",
            human_ms(failing_for),
            human_ms(degraded_after),
            sync.last_error().unwrap_or_default()
        ));
    }
    if inner.config.persistence.is_ephemeral() {
        let lag = super::metrics::sync_lag_ms(state, now);
        let behind = lag > inner.config.sync_behind_after.as_millis() as i64;
        if !sync.enabled || behind {
            status = status.max_with(Status::Degraded);
            reasons.push(format!(
                "the data dir is not on persistent storage ({}) and Hub sync is {}: acknowledged \
                 records are lost when the container restarts; attach persistent storage (a \
                 Space's mounts at /data) or enable Hub sync",
                inner.config.persistence.describe(),
                if sync.enabled { "behind" } else { "off" }
            ));
        }
    }
    Health { status, reasons }
}

impl Status {
    fn max_with(self, other: Status) -> Status {
        let rank = |s: Status| match s {
            Status::Ok => 0,
            Status::Degraded => 1,
            Status::Failing => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    pub fn http(self) -> StatusCode {
        match self {
            Status::Failing => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        }
    }
}

fn human_ms(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(ms.max(0) as u64 / 1000)).to_string()
}

/// `GET /healthz`: the status word only.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let h = check(&state);
    (h.status.http(), Json(serde_json::json!({ "status": h.status }))).into_response()
}

/// `GET /healthz/details`: for a local client or the admin token only.
pub async fn details(State(state): State<AppState>, req: Request) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if !is_operator(req.headers(), peer, state.inner.config.admin_token.as_deref()) {
        return AppError::Forbidden.into_response();
    }
    let h = check(&state);
    let inner = &state.inner;
    let log = &inner.log;
    let now = inner.clock.now_ms();
    let body = serde_json::json!({
        "status": h.status,
        "reasons": h.reasons,
        "records": log.counters().records.load(Relaxed),
        "data_dir": {
            "path": log.data_dir().display().to_string(),
            "persistent": !inner.config.persistence.is_ephemeral(),
            "storage": inner.config.persistence.describe(),
        },
        "sync": inner.sync.details(),
        "sync_lag_seconds": super::metrics::sync_lag_ms(&state, now) as f64 / 1000.0,
    });
    (h.status.http(), [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A loopback peer whose request carries no forwarding header (so no proxy relayed it), or the
/// admin token.
pub fn is_operator(headers: &HeaderMap, peer: Option<SocketAddr>, admin_token: Option<&str>) -> bool {
    let forwarded = headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
    if peer.is_some_and(|p| p.ip().to_canonical().is_loopback()) && !forwarded {
        return true;
    }
    let Some(token) = admin_token.filter(|t| !t.is_empty()) else {
        return false;
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Compare digests, so the time taken says nothing about how much of the token matched.
    given.is_some_and(|g| {
        use sha2::Digest;
        sha2::Sha256::digest(g.trim().as_bytes()) == sha2::Sha256::digest(token.as_bytes())
    })
}

impl Persistence {
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Persistence::Ephemeral { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_is_local_and_unforwarded_or_has_the_token() {
        let local: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let remote: SocketAddr = "203.0.113.1:5".parse().unwrap();
        let mut h = HeaderMap::new();
        assert!(is_operator(&h, Some(local), None));
        assert!(!is_operator(&h, Some(remote), None));
        assert!(!is_operator(&h, None, None));
        h.insert("x-forwarded-for", "203.0.113.1".parse().unwrap());
        assert!(!is_operator(&h, Some(local), None), "a local proxy relayed it");
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(is_operator(&h, Some(remote), Some("s3cret")));
        assert!(!is_operator(&h, Some(remote), Some("other")));
        assert!(!is_operator(&h, Some(remote), Some("")));
    }
}
