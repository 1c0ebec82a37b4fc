//! The HTTP side of `sentiment-server`: [`app`] builds the whole service as one `Router`, so
//! tests drive it with `tower::ServiceExt::oneshot` and no socket.

pub mod cors;
mod error;
mod handlers;
pub mod health;
pub mod metrics;
mod rate_limit;
pub mod serve;
mod static_files;
mod trace;

pub use cors::{CorsError, CorsOrigins};
pub use error::AppError;
pub use rate_limit::{client_key_source, default_trusted_proxies, RateLimit, DEFAULT_TRUSTED_PROXIES};
pub use serve::{bind, serve, ConnLimits, ConnStats};

use crate::client_key::ClientKeys;
use crate::data_dir::Persistence;
use crate::feedback_log::sync::SyncStatus;
use crate::feedback_log::FeedbackLog;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, BoxError, Router};
use shared::Clock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything about the HTTP service that can be configured.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The model's label set; `predicted`, `label` and the keys of `scores` must come from it.
    pub labels: Vec<String>,
    /// Built frontend (`dist/`), served at `/`.
    pub static_dir: Option<PathBuf>,
    /// Model bundle directory, served at `/model/`.
    pub model_dir: Option<PathBuf>,
    /// Origins allowed to call the API from a browser.
    pub cors_origins: CorsOrigins,
    pub rate_limit: RateLimit,
    /// Proxies in front of the server that append to `X-Forwarded-For` (0 = use the peer address).
    pub trusted_proxy_hops: usize,
    /// Networks those proxies connect from; `X-Forwarded-For` from any other peer is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub request_timeout: Duration,
    /// Requests handled at once; more are refused with 503 (load shedding).
    pub max_in_flight: usize,
    pub body_limit: usize,
    /// Sliding window of the agreement figures on `/metrics` (whole hours).
    pub quality_window: Duration,
    /// The champion's agreement baseline, exported for the alert rules.
    pub agreement_baseline: Option<f64>,
    /// `/healthz` says `degraded` once sync has failed for this long.
    pub sync_degraded_after: Duration,
    /// Sync counts as behind once the oldest unsynced record is this old.
    pub sync_behind_after: Duration,
    /// Whether the data dir survives a restart (see `data_dir`).
    pub persistence: Persistence,
    /// Bearer token that opens `/healthz/details` to a remote client (`SENTIMENT_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Makes the pseudonymous client key stored with each record.
    pub client_keys: ClientKeys,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            labels: shared::SENTIMENT_LABELS.iter().map(|s| s.to_string()).collect(),
            static_dir: None,
            model_dir: None,
            cors_origins: CorsOrigins::SameOrigin,
            rate_limit: RateLimit::default(),
            trusted_proxy_hops: 0,
            trusted_proxies: default_trusted_proxies(),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            body_limit: 16 * 1024,
            quality_window: Duration::from_secs(24 * 3600),
            agreement_baseline: None,
            sync_degraded_after: Duration::from_secs(30 * 60),
            sync_behind_after: Duration::from_secs(15 * 60),
            persistence: Persistence::Persistent { how: "not checked".into() },
            admin_token: None,
            client_keys: ClientKeys::default(),
        }
    }
}

pub(crate) struct Inner {
    pub log: FeedbackLog,
    pub config: ServerConfig,
    pub sync: Arc<SyncStatus>,
    pub clock: Clock,
    pub http_metrics: metrics::HttpMetrics,
    pub limiter: rate_limit::Limiter,
    pub connections: Arc<ConnStats>,
}

/// Shared state of all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl AppState {
    pub fn new(log: FeedbackLog, config: ServerConfig, sync: Arc<SyncStatus>, clock: Clock) -> Self {
        let limiter = rate_limit::Limiter::new(config.rate_limit);
        AppState {
            inner: Arc::new(Inner {
                log,
                config,
                sync,
                clock,
                http_metrics: Default::default(),
                limiter,
                connections: Default::default(),
            }),
        }
    }

    /// The connection counters [`serve`] updates (shown on `/metrics`).
    pub fn connections(&self) -> Arc<ConnStats> {
        self.inner.connections.clone()
    }

    pub fn log(&self) -> &FeedbackLog {
        &self.inner.log
    }
}

/// The whole service: API, metrics, static files and every protection layer.
pub fn app(state: AppState) -> Router {
    let cfg = &state.inner.config;
    let mut router = Router::new()
        .route("/api/feedback", post(handlers::post_feedback))
        .route("/api/feedback/stats", get(handlers::stats))
        .route("/healthz", get(health::healthz))
        .route("/healthz/details", get(health::details))
        .route("/metrics", get(handlers::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit))
        .method_not_allowed_fallback(handlers::method_not_allowed);
    if let Some(dir) = &cfg.model_dir {
        router = router.nest_service("/model", static_files::service(dir));
    }
    router = match &cfg.static_dir {
        Some(dir) => router.fallback_service(static_files::service(dir)),
        None => router.fallback(handlers::not_found),
    };

    let semaphore = Arc::new(tokio::sync::Semaphore::new(cfg.max_in_flight.max(1)));
    // One `Router::layer` for the whole stack: each call boxes the stack below it again, and
    // every request clones it and boxes its future. Seven calls (one per layer) cost a feedback
    // request 14 % more instructions than this one (docs/benchmarks.md, "Commodity crates").
    // The first `.layer` is the outermost, so:
    let layers = ServiceBuilder::new()
        // the cross-origin isolation headers and `nosniff` go on every answer: errors, static
        // files, CORS preflights, shed requests;
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-embedder-policy"),
            HeaderValue::from_static("require-corp"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        // the metrics count every request, the ones the protection below refuses included;
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        // a browser reads a refusal (503, 413) only when it carries the CORS headers;
        .layer(cfg.cors_origins.layer())
        // (a preflight's empty answer needs a body type with a default, the trace's has none)
        .map_response(IntoResponse::into_response)
        .layer(trace::layer())
        // the protection: a timeout or a shed request becomes an `AppError` answer (503);
        .layer(HandleErrorLayer::new(handle_layer_error))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(semaphore))
        .timeout(cfg.request_timeout)
        // innermost, next to the extractors that read the body (413 beyond it).
        .layer(DefaultBodyLimit::max(cfg.body_limit));

    router.layer(layers).with_state(state)
}

async fn handle_layer_error(err: BoxError) -> AppError {
    if err.is::<tower::timeout::error::Elapsed>() {
        AppError::Timeout
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        AppError::Overloaded
    } else {
        tracing::error!(error = %err, "unexpected middleware error");
        AppError::Overloaded
    }
}
