//! Requests traced with `tower_http`'s `TraceLayer`, off by default: with
//! `RUST_LOG=info,tower_http=debug` each request gets a span (method and route template) that
//! whatever it logs carries, and one event per response with its status and latency. The span
//! holds the method and the route template only: never the raw path (unbounded, client-chosen),
//! a query, a header or the body. Debug, not info: at info the span costs a feedback request
//! ~6 % more instructions (the subscriber formats its fields every time); off, the whole layer
//! costs under 1 % (docs/benchmarks.md, "Commodity crates").

use super::metrics::method_label;
use axum::extract::{MatchedPath, Request};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnRequest, DefaultOnResponse, TraceLayer,
};
use tower_http::LatencyUnit;
use tracing::{Level, Span};

pub type RequestTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> Span,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
>;

pub fn layer() -> RequestTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> Span)
        .on_response(DefaultOnResponse::new().level(Level::DEBUG).latency_unit(LatencyUnit::Micros))
        // A 5xx is already logged once, as a warning with its cause (`AppError`); at the default
        // level a flood of shed requests must not add a line each.
        .on_failure(DefaultOnFailure::new().level(Level::DEBUG).latency_unit(LatencyUnit::Micros))
}

fn request_span(req: &Request) -> Span {
    let route = req.extensions().get::<MatchedPath>().map_or("other", MatchedPath::as_str);
    // Under tower_http's target, so the one directive `tower_http=debug` turns on spans and events.
    tracing::debug_span!(target: "tower_http::trace", "request", method = method_label(req.method()), route)
}
