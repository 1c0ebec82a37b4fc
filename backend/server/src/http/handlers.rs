//! Request handlers.

use super::{client_key_source, AppError, AppState};
use crate::feedback_log::aggregates::{hour_of, OTHER_VERSION};
use crate::feedback_log::Appended;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use shared::feedback::FeedbackStats;
use shared::feedback::{format_timestamp_millis, is_model_version, parse_timestamp_millis};
use shared::{FeedbackRecord, FeedbackSubmission};
use std::net::SocketAddr;

/// `POST /api/feedback`: 201 when stored, 200 with the stored record when the id is a retry.
/// The record is stored with the sender's pseudonymous client key (the submission cannot carry
/// one); the answer leaves it out.
pub async fn post_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<FeedbackSubmission>, JsonRejection>,
) -> Result<(StatusCode, Json<FeedbackRecord>), AppError> {
    let Json(submission) = body?;
    let cfg = &state.inner.config;
    submission.validate(&cfg.labels)?;
    let id = submission.id.clone();
    let received_at = format_timestamp_millis(state.inner.clock.now_ms());
    let source = client_key_source(&headers, peer.map(|p| p.0 .0), cfg.trusted_proxy_hops, &cfg.trusted_proxies);
    let client = Some(cfg.client_keys.key(&source));
    let (status, mut rec) = match state.inner.log.append(FeedbackRecord { submission, received_at, client }).await? {
        Appended::Stored(rec) => (StatusCode::CREATED, rec),
        Appended::Existing(rec) => (StatusCode::OK, rec),
        Appended::Conflict => return Err(AppError::IdConflict(id)),
    };
    rec.client = None;
    Ok((status, Json(rec)))
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    /// `YYYY-MM-DD` or RFC 3339; records received at or after it.
    since: Option<String>,
    model_version: Option<String>,
}

/// `GET /api/feedback/stats?since=&model_version=`: from the running aggregates; `since` is a
/// day or a whole UTC hour, and the answer lists at most 20 model versions (the rest as
/// `(other)`), so neither its cost nor its size grows with the records stored.
pub async fn stats(
    State(state): State<AppState>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<FeedbackStats>, AppError> {
    let Query(q) = query?;
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => {
            let shown = || s.chars().take(40).collect::<String>();
            let ms = parse_timestamp_millis(s).ok_or_else(|| {
                AppError::BadQuery(format!("since must be YYYY-MM-DD or an RFC 3339 time, got {:?}", shown()))
            })?;
            // Stats are kept per UTC hour (running aggregates, never a scan of the records).
            if ms.rem_euclid(3_600_000) != 0 {
                return Err(AppError::BadQuery(format!(
                    "since must fall on a whole UTC hour (stats are kept per hour), e.g. {}, got {:?}",
                    &format_timestamp_millis(ms - ms.rem_euclid(3_600_000))[..19],
                    shown()
                )));
            }
            Some(hour_of(ms))
        }
        None => None,
    };
    let mv = q.model_version.as_deref().filter(|s| !s.is_empty());
    if let Some(v) = mv {
        if !is_model_version(v) && v != OTHER_VERSION {
            return Err(AppError::BadQuery(
                "model_version may only hold 1-128 letters, digits, '.', '_' and '-'".to_owned(),
            ));
        }
    }
    Ok(Json(state.inner.log.stats(since, mv)))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], super::metrics::render(&state))
        .into_response()
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
