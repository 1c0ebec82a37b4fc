//! Prometheus text exposition (format 0.0.4), written by hand: counters, gauges, one histogram.
//!
//! Every label's values are bounded, whatever clients send: routes are templates (unmatched
//! paths are `other`), methods outside the standard set are `OTHER`, statuses are three
//! digits, model versions are capped (see `feedback_log::aggregates`) and labels are the
//! model's. The quality figures (agreement per model version with its Wilson bounds, feedback
//! per label, sync lag and backlog) feed the rules in `prometheus/`.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// HTTP metrics by (route, method, status).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut series = self.series.lock().expect("metrics lock");
        let key = (route.to_owned(), method.to_owned(), status);
        let h = series.entry(key).or_default();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            h.counts[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    fn write(&self, out: &mut String) {
        let series = self.series.lock().expect("metrics lock").clone();
        header(out, "sentiment_http_requests_total", "counter", "HTTP requests answered, by route, method and status.");
        for ((route, method, status), h) in &series {
            let _ = writeln!(
                out,
                "sentiment_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                escape(method),
                h.count
            );
        }
        header(
            out,
            "sentiment_http_request_duration_seconds",
            "histogram",
            "Time from request to response head, by route, method and status.",
        );
        for ((route, method, status), h) in &series {
            let labels = format!("route=\"{}\",method=\"{}\",status=\"{status}\"", escape(route), escape(method));
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ =
                    writeln!(out, "sentiment_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}");
            }
            let _ = writeln!(out, "sentiment_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "sentiment_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "sentiment_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The method as a label value: the standard ones as they are, anything else `OTHER` (a client
/// may send any token as a method; each would otherwise be a new series).
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    for known in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ] {
        if *m == known {
            return match known {
                Method::GET => "GET",
                Method::HEAD => "HEAD",
                Method::POST => "POST",
                Method::PUT => "PUT",
                Method::DELETE => "DELETE",
                Method::OPTIONS => "OPTIONS",
                Method::PATCH => "PATCH",
                Method::CONNECT => "CONNECT",
                _ => "TRACE",
            };
        }
    }
    "OTHER"
}

/// Age of the oldest record not yet in the Hub dataset (0 when none is waiting, or when sync is
/// off: then nothing is behind, and the health check says the rest).
pub fn sync_lag_ms(state: &AppState, now_ms: i64) -> i64 {
    if !state.inner.sync.enabled {
        return 0;
    }
    let (_, _, oldest) = state.inner.sync.backlog(&state.inner.log.segments());
    oldest.map_or(0, |t| (now_ms - t).max(0))
}

/// Middleware: times every request and counts it under its route template (never the raw
/// path, so the number of series stays bounded).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None => "other".to_owned(),
    };
    let method = method_label(req.method()).to_owned();
    let resp = next.run(req).await;
    state.inner.http_metrics.observe(&route, &method, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

/// The whole `/metrics` page.
pub fn render(state: &AppState) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(4096);
    state.inner.http_metrics.write(&mut out);
    let log = &state.inner.log;
    let c = log.counters();
    sample(
        &mut out,
        "sentiment_feedback_records",
        "gauge",
        "Records in the local feedback log (retired segments excluded).",
        c.records.load(Relaxed),
    );
    sample(
        &mut out,
        "sentiment_feedback_records_stored_total",
        "counter",
        "Records newly stored (fsync'd) since the process started.",
        c.appended.load(Relaxed),
    );
    sample(
        &mut out,
        "sentiment_feedback_duplicate_submissions_total",
        "counter",
        "Submissions answered from the id index (client retries).",
        c.duplicates.load(Relaxed),
    );
    sample(
        &mut out,
        "sentiment_feedback_log_fsync_batches_total",
        "counter",
        "Group commits (one write and one fsync each) since the process started.",
        c.batches.load(Relaxed),
    );
    sample(
        &mut out,
        "sentiment_feedback_records_retired_total",
        "counter",
        "Records whose synced segments left the local disk (retention) since the process started.",
        c.retired.load(Relaxed),
    );
    let sync = &state.inner.sync;
    let segments = log.segments();
    let (synced, pending) = sync.split_records(&segments);
    let (_, backlog_bytes, _) = sync.backlog(&segments);
    let now = state.inner.clock.now_ms();
    sample(&mut out, "sentiment_sync_enabled", "gauge", "1 when Hub sync is configured.", u8::from(sync.enabled));
    sample(
        &mut out,
        "sentiment_sync_records_pending",
        "gauge",
        "Records in the local log not yet in the Hub dataset (the backlog).",
        pending,
    );
    sample(
        &mut out,
        "sentiment_sync_backlog_bytes",
        "gauge",
        "Bytes of the local log not yet in the Hub dataset.",
        backlog_bytes,
    );
    sample(
        &mut out,
        "sentiment_sync_lag_seconds",
        "gauge",
        "Age of the oldest record not yet in the Hub dataset (0 when none waits or sync is off).",
        sync_lag_ms(state, now) as f64 / 1000.0,
    );
    sample(
        &mut out,
        "sentiment_sync_records_synced",
        "gauge",
        "Records of the local log committed to the Hub dataset.",
        synced,
    );
    sample(&mut out, "sentiment_sync_failures_total", "counter", "Failed sync attempts.", sync.failures.load(Relaxed));
    sample(&mut out, "sentiment_sync_commits_total", "counter", "Successful Hub commits.", sync.commits.load(Relaxed));
    sample(
        &mut out,
        "sentiment_sync_conflicts_total",
        "counter",
        "Files found at this replica's dataset path with other content (each moved it to a fresh folder).",
        sync.conflicts.load(Relaxed),
    );
    sample(
        &mut out,
        "sentiment_sync_failing_seconds",
        "gauge",
        "How long sync has been failing without a success (0 when it is not).",
        sync.failing_for_ms(now) as f64 / 1000.0,
    );
    sample(
        &mut out,
        "sentiment_sync_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful sync (0 = never).",
        sync.last_success_ms.load(Relaxed) as f64 / 1000.0,
    );
    let health = super::health::check(state);
    sample(
        &mut out,
        "sentiment_health_status",
        "gauge",
        "0 ok, 1 degraded, 2 failing (as /healthz; the reasons are on /healthz/details).",
        match health.status {
            super::health::Status::Ok => 0,
            super::health::Status::Degraded => 1,
            super::health::Status::Failing => 2,
        },
    );
    quality(&mut out, state, now);
    connections(&mut out, state);
    out
}

/// Model quality from the running aggregates: feedback per label (all time) and agreement per
/// model version over the sliding window.
fn quality(out: &mut String, state: &AppState, now_ms: i64) {
    use crate::feedback_log::aggregates::{hour_of, Agreement};
    let log = &state.inner.log;
    let cfg = &state.inner.config;
    header(
        out,
        "sentiment_feedback_received_total",
        "counter",
        "Feedback records stored over the log's life, by the label the user gave.",
    );
    let all = log.all_time_counts();
    let mut labels: Vec<_> = all.labels.iter().collect();
    labels.sort();
    for (label, n) in labels {
        let _ = writeln!(out, "sentiment_feedback_received_total{{label=\"{}\"}} {n}", escape(label));
    }
    sample(
        out,
        "sentiment_feedback_agreement_window_seconds",
        "gauge",
        "Length of the sliding window of the agreement figures (whole UTC hours, the current one included).",
        cfg.quality_window.as_secs(),
    );
    let window_hours = (cfg.quality_window.as_secs() / 3600).max(1) as i64;
    let per_version = log.agreement_since(hour_of(now_ms) - window_hours + 1);
    type Figure = fn(&Agreement) -> f64;
    let series: [(&str, &str, Figure); 4] = [
        ("sentiment_feedback_agreement_samples", "Feedback records in the window, by model version.", |a| a.n as f64),
        (
            "sentiment_feedback_agreement_ratio",
            "Share of feedback in the window whose prediction the user kept, by model version.",
            |a| a.agree as f64 / a.n as f64,
        ),
        (
            "sentiment_feedback_agreement_wilson_lower",
            "Lower bound of the Wilson 95 % interval of the agreement, by model version.",
            |a| a.wilson[0],
        ),
        (
            "sentiment_feedback_agreement_wilson_upper",
            "Upper bound of the Wilson 95 % interval of the agreement, by model version.",
            |a| a.wilson[1],
        ),
    ];
    for (name, help, value) in series {
        header(out, name, "gauge", help);
        for a in &per_version {
            let _ = writeln!(out, "{name}{{model_version=\"{}\"}} {}", escape(&a.model_version), value(a));
        }
    }
    if let Some(b) = cfg.agreement_baseline {
        sample(
            out,
            "sentiment_feedback_agreement_baseline",
            "gauge",
            "The champion's agreement baseline (--agreement-baseline), for the alert rules.",
            b,
        );
    }
}

fn connections(out: &mut String, state: &AppState) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &state.inner.connections;
    sample(out, "sentiment_http_connections_open", "gauge", "HTTP connections open now.", c.open.load(Relaxed));
    sample(
        out,
        "sentiment_http_connections_accepted_total",
        "counter",
        "HTTP connections accepted.",
        c.accepted.load(Relaxed),
    );
    sample(
        out,
        "sentiment_http_connections_refused_total",
        "counter",
        "Connections closed at once because --max-connections were open.",
        c.refused.load(Relaxed),
    );
}
