//! One error type for every HTTP answer that is not a success: `{"error": code, "detail": sentence}`.

use crate::feedback_log::LogError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shared::feedback::FeedbackError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON of the expected shape (status from the rejection: 400, 413, 415, 422).
    #[error("{detail}")]
    Body { status: StatusCode, detail: String },
    /// The body parsed but breaks a validation rule.
    #[error("{0}")]
    Invalid(#[from] FeedbackError),
    #[error("id {0} was already stored with a different body; a retry must resend the same body")]
    IdConflict(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("too many requests from this client; retry in {0} s")]
    RateLimited(u64),
    #[error("the server is at capacity; retry shortly")]
    Overloaded,
    #[error("the request took too long; it is safe to retry with the same id")]
    Timeout,
    /// The detail (paths, OS errors) goes to the server's log, never into the answer.
    #[error("the feedback log cannot take records right now; retry shortly")]
    Storage(#[from] LogError),
    #[error("this endpoint answers only a local client or one with the admin token")]
    Forbidden,
    #[error("no such resource")]
    NotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Body { status, .. } => *status,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::IdConflict(_) => StatusCode::CONFLICT,
            AppError::BadQuery(_) => StatusCode::BAD_REQUEST,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Overloaded | AppError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Storage(LogError::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Body { status, .. } => match status.as_u16() {
                413 => "payload_too_large",
                415 => "unsupported_media_type",
                422 => "invalid_body",
                _ => "malformed_json",
            },
            AppError::Invalid(_) => "invalid_feedback",
            AppError::IdConflict(_) => "id_conflict",
            AppError::BadQuery(_) => "bad_query",
            AppError::RateLimited(_) => "rate_limited",
            AppError::Overloaded | AppError::Storage(LogError::Busy) => "overloaded",
            AppError::Timeout => "timeout",
            AppError::Storage(_) => "storage_unavailable",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Forbidden => "forbidden",
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        AppError::Body { status: r.status(), detail: r.body_text() }
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::BadQuery(r.body_text())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Storage(e) => tracing::warn!(code = self.code(), error = %e, "request failed"),
            _ if status.is_server_error() => tracing::warn!(code = self.code(), detail = %self, "request failed"),
            _ => {}
        }
        let body = serde_json::json!({ "error": self.code(), "detail": self.to_string() });
        let mut resp = (status, axum::Json(body)).into_response();
        let retry = match &self {
            AppError::RateLimited(s) => Some(*s),
            AppError::Overloaded | AppError::Timeout | AppError::Storage(_) => Some(1),
            _ => None,
        };
        if let Some(s) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
