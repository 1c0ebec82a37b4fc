//! Static files: the built frontend at `/` and the model bundle at `/model/`.
//!
//! Content types come from the file extension (`.wasm` → `application/wasm`). Files whose name
//! carries a content hash (Trunk's `app-1a2b3c4d5e6f7a8b_bg.wasm`) never change under that
//! name and are cached for a year; everything else is revalidated (`no-cache` + Last-Modified).

use super::AppError;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::convert::Infallible;
use std::path::Path;
use tower_http::services::ServeDir;

/// `Cache-Control` for a request path.
pub fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or("");
    if is_content_addressed(name) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// True when the file name contains a run of at least 16 hex digits between separators.
fn is_content_addressed(name: &str) -> bool {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|part| part.len() >= 16 && part.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn set_cache_headers(req: Request, next: Next) -> Response {
    let cc = cache_control(req.uri().path());
    let mut resp = next.run(req).await;
    if resp.status().is_success() || resp.status().as_u16() == 304 {
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    }
    resp
}

async fn not_found() -> Result<Response, Infallible> {
    Ok(AppError::NotFound.into_response())
}

/// A router that serves `dir` with the headers above and JSON 404s.
pub fn service(dir: &Path) -> Router {
    let serve = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .not_found_service(tower::service_fn(|_req: Request| not_found()));
    Router::new().fallback_service(serve).layer(middleware::from_fn(set_cache_headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_immutable() {
        assert_eq!(cache_control("/frontend-9f1c5e6d2b3a4c7d_bg.wasm"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("/model/model-0123456789abcdef0123.gguf"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("/index.html"), "no-cache");
        assert_eq!(cache_control("/model/manifest.json"), "no-cache");
        assert_eq!(cache_control("/model/tokenizer.json"), "no-cache");
    }
}
