//! Request handlers.

use super::{AppError, AppState};
use crate::feedback_log::Appended;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use shared::feedback::FeedbackStats;
use shared::feedback::{format_timestamp_millis, parse_timestamp_millis};
use shared::{FeedbackRecord, FeedbackSubmission};

/// `POST /api/feedback`: 201 when stored, 200 with the stored record when the id is a retry.
pub async fn post_feedback(
    State(state): State<AppState>,
    body: Result<Json<FeedbackSubmission>, JsonRejection>,
) -> Result<(StatusCode, Json<FeedbackRecord>), AppError> {
    let Json(submission) = body?;
    submission.validate(&state.inner.config.labels)?;
    let id = submission.id.clone();
    let received_at = format_timestamp_millis(state.inner.clock.now_ms());
    match state.inner.log.append(FeedbackRecord { submission, received_at }).await? {
        Appended::Stored(rec) => Ok((StatusCode::CREATED, Json(rec))),
        Appended::Existing(rec) => Ok((StatusCode::OK, Json(rec))),
        Appended::Conflict => Err(AppError::IdConflict(id)),
    }
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    /// `YYYY-MM-DD` or RFC 3339; records received at or after it.
    since: Option<String>,
    model_version: Option<String>,
}

/// `GET /api/feedback/stats?since=&model_version=`
pub async fn stats(
    State(state): State<AppState>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<FeedbackStats>, AppError> {
    let Query(q) = query?;
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_timestamp_millis(s).ok_or_else(|| {
            AppError::BadQuery(format!(
                "since must be YYYY-MM-DD or an RFC 3339 time, got {:?}",
                s.chars().take(40).collect::<String>()
            ))
        })?),
        None => None,
    };
    let mv = q.model_version.as_deref().filter(|s| !s.is_empty());
    Ok(Json(state.inner.log.stats(since, mv)))
}

/// `GET /healthz`: 200 while the log accepts records, 503 otherwise.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let log = &state.inner.log;
    let ok = log.healthy();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "records": log.counters().records.load(std::sync::atomic::Ordering::Relaxed),
        "sync": state.inner.sync.summary(),
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
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
