//! Prometheus text exposition (format 0.0.4), written by hand: a few counters and one histogram.

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

/// Middleware: times every request and counts it under its route template (never the raw
/// path, so the number of series stays bounded).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None => "other".to_owned(),
    };
    let method = req.method().as_str().to_owned();
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
        "Records in the local feedback log.",
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
    let sync = &state.inner.sync;
    let segments = log.segments();
    let (synced, pending) = sync.split_records(&segments);
    sample(&mut out, "sentiment_sync_enabled", "gauge", "1 when Hub sync is configured.", u8::from(sync.enabled));
    sample(
        &mut out,
        "sentiment_sync_records_pending",
        "gauge",
        "Records in the local log not yet in the Hub dataset.",
        pending,
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
        "sentiment_sync_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful sync (0 = never).",
        sync.last_success_ms.load(Relaxed) as f64 / 1000.0,
    );
    out
}
