//! The HTTP API through `server::app(...)` + `oneshot`: every status, retries by id, every
//! validation rule, the stats arithmetic, and the protection and static-file layers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use sentiment_server::client_key::ClientKeys;
use sentiment_server::data_dir::Persistence;
use sentiment_server::feedback_log::sync::SyncStatus;
use sentiment_server::http::{CorsOrigins, RateLimit, ServerConfig};
use shared::feedback::{parse_timestamp_millis, wilson_interval, Z_95};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn no_limit() -> ServerConfig {
    ServerConfig { rate_limit: RateLimit { per_minute: 0, burst: 0 }, ..ServerConfig::default() }
}

async fn post(app: &TestApp, v: &serde_json::Value) -> (StatusCode, serde_json::Value) {
    let (s, _, b) = send(&app.router, post_json("/api/feedback", v.to_string())).await;
    (s, json(&b))
}

/// Asserts the error shape and code.
fn assert_error(body: &serde_json::Value, code: &str) {
    let obj = body.as_object().expect("error body is an object");
    assert_eq!(obj.len(), 2, "exactly error + detail: {body}");
    assert_eq!(obj["error"], code, "{body}");
    assert!(obj["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
}

#[tokio::test]
async fn stores_then_answers_retries_with_the_same_body() {
    let dir = TempDir::new("api-retry");
    let app = test_app(&dir.0, no_limit());
    let (s1, b1) = post(&app, &valid(1)).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert_eq!(b1["received_at"], "2026-11-18T11:06:40.000Z");
    assert_eq!(b1["text"], "the service was great");
    // A retry later: 200 and byte-for-byte the same record (first received_at).
    app.clock.fetch_add(60_000, Ordering::Relaxed);
    let (s2, b2) = post(&app, &valid(1)).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(b1, b2);
    // Same id, different body: a conflict, nothing stored.
    let mut changed = valid(1);
    changed["label"] = "negative".into();
    let (s3, b3) = post(&app, &changed).await;
    assert_eq!(s3, StatusCode::CONFLICT);
    assert_error(&b3, "id_conflict");
    let (s4, _) = post(&app, &valid(2)).await;
    assert_eq!(s4, StatusCode::CREATED);
    app.log.shutdown().await.unwrap();
    let stored = stored_records(&dir.0);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].submission.label, "neutral");
}

#[tokio::test]
async fn concurrent_retries_of_one_id_store_it_once() {
    let dir = TempDir::new("api-race");
    let app = test_app(&dir.0, no_limit());
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let router = app.router.clone();
        tasks
            .push(tokio::spawn(async move { send(&router, post_json("/api/feedback", valid(7).to_string())).await.0 }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(created, 1);
    app.log.shutdown().await.unwrap();
    assert_eq!(stored_records(&dir.0).len(), 1);
}

#[tokio::test]
async fn every_validation_rule_is_a_422_and_stores_nothing() {
    let dir = TempDir::new("api-validate");
    let app = test_app(&dir.0, no_limit());
    let base = valid(10);
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    let long = "é".repeat(5001);
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("id not a uuid", edit(&|v| v["id"] = "not-a-uuid".into()), "invalid_feedback"),
        ("id too short", edit(&|v| v["id"] = "0f8fad5b-d9cb-469f-a165-70867728950".into()), "invalid_feedback"),
        ("empty text", edit(&|v| v["text"] = "".into()), "invalid_feedback"),
        ("blank text", edit(&|v| v["text"] = " \n\t ".into()), "invalid_feedback"),
        ("text too long", edit(&|v| v["text"] = long.clone().into()), "invalid_feedback"),
        ("unknown label", edit(&|v| v["label"] = "angry".into()), "invalid_feedback"),
        ("unknown predicted", edit(&|v| v["predicted"] = "Positive".into()), "invalid_feedback"),
        (
            "missing score",
            edit(&|v| {
                v["scores"].as_object_mut().unwrap().remove("neutral");
            }),
            "invalid_feedback",
        ),
        ("extra score", edit(&|v| v["scores"]["angry"] = 0.0.into()), "invalid_feedback"),
        ("score above 1", edit(&|v| v["scores"]["neutral"] = 1.5.into()), "invalid_feedback"),
        ("negative score", edit(&|v| v["scores"]["neutral"] = (-0.1).into()), "invalid_feedback"),
        ("empty model_version", edit(&|v| v["model_version"] = "".into()), "invalid_feedback"),
        ("long model_version", edit(&|v| v["model_version"] = "v".repeat(129).into()), "invalid_feedback"),
        ("long note", edit(&|v| v["note"] = "n".repeat(1001).into()), "invalid_feedback"),
        ("unknown field", edit(&|v| v["ip"] = "1.2.3.4".into()), "invalid_body"),
        ("client received_at", edit(&|v| v["received_at"] = "2020-01-01T00:00:00Z".into()), "invalid_body"),
        (
            "missing label",
            edit(&|v| {
                v.as_object_mut().unwrap().remove("label");
            }),
            "invalid_body",
        ),
        ("text is a number", edit(&|v| v["text"] = 5.into()), "invalid_body"),
        ("score is a string", edit(&|v| v["scores"]["neutral"] = "0.2".into()), "invalid_body"),
        ("body is an array", serde_json::json!([base.clone()]), "invalid_body"),
    ];
    for (name, body, code) in &cases {
        let (s, b) = post(&app, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {b}");
        assert_error(&b, code);
    }
    // Boundaries that are accepted: 5,000 characters after trimming, scores 0 and 1, a note.
    let ok = edit(&|v| {
        v["text"] = format!("  {}  ", "é".repeat(5000)).into();
        v["scores"] = serde_json::json!({"negative": 0.0, "neutral": 0.0, "positive": 1.0});
        v["note"] = "n".repeat(1000).into();
    });
    assert_eq!(post(&app, &ok).await.0, StatusCode::CREATED);
    app.log.shutdown().await.unwrap();
    assert_eq!(stored_records(&dir.0).len(), 1);
}

#[tokio::test]
async fn malformed_bodies_get_400_413_415() {
    let dir = TempDir::new("api-malformed");
    let app = test_app(&dir.0, no_limit());
    let (s, _, b) = send(&app.router, post_json("/api/feedback", "{\"id\": ")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&json(&b), "malformed_json");
    // Invalid UTF-8 inside a string, and a lone surrogate escape.
    let mut bad = valid(1).to_string().into_bytes();
    let at = bad.windows(5).position(|w| w == b"great").unwrap();
    bad[at] = 0xff;
    let (s, _, b) = send(&app.router, post_json("/api/feedback", bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&b));
    let surrogate = valid(1).to_string().replace("great", "\\ud800");
    let (s, _, _) = send(&app.router, post_json("/api/feedback", surrogate)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // No or wrong content type.
    let req = Request::post("/api/feedback").body(Body::from(valid(1).to_string())).unwrap();
    let (s, _, b) = send(&app.router, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&json(&b), "unsupported_media_type");
    let req = Request::post("/api/feedback")
        .header("content-type", "text/plain")
        .body(Body::from(valid(1).to_string()))
        .unwrap();
    assert_eq!(send(&app.router, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Over 16 KiB: 413, even when the JSON would be valid.
    let mut big = valid(1);
    big["note"] = "x".repeat(17 * 1024).into();
    let (s, _, b) = send(&app.router, post_json("/api/feedback", big.to_string())).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&json(&b), "payload_too_large");
    app.log.shutdown().await.unwrap();
    assert!(stored_records(&dir.0).is_empty());
}

#[tokio::test]
async fn stats_count_by_label_day_version_with_wilson_interval() {
    let dir = TempDir::new("api-stats");
    let app = test_app(&dir.0, no_limit());
    let (s, _, b) = send(&app.router, get("/api/feedback/stats")).await;
    assert_eq!(s, StatusCode::OK);
    let empty = json(&b);
    assert_eq!(empty["total"], 0);
    assert!(empty["agreement"].is_null() && empty["agreement_ci95"].is_null());

    let day1 = parse_timestamp_millis("2026-11-20T23:00:00Z").unwrap();
    let day2 = parse_timestamp_millis("2026-11-21T08:00:00Z").unwrap();
    // (time, predicted, label, version): 5 of 7 agree.
    let rows = [
        (day1, "positive", "positive", "v1"),
        (day1, "positive", "negative", "v1"),
        (day1, "neutral", "neutral", "v1"),
        (day2, "negative", "negative", "v2"),
        (day2, "negative", "negative", "v2"),
        (day2, "neutral", "positive", "v2"),
        (day2, "positive", "positive", "v2"),
    ];
    for (i, (t, p, l, v)) in rows.iter().enumerate() {
        app.clock.store(*t, Ordering::Relaxed);
        let (s, _) = post(&app, &body(&uuid(100 + i as u64), "text", p, l, v)).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, _, b) = send(&app.router, get("/api/feedback/stats")).await;
    let st = json(&b);
    assert_eq!(st["total"], 7);
    assert_eq!(st["by_label"], serde_json::json!({"negative": 3, "neutral": 1, "positive": 3}));
    assert_eq!(st["by_day"]["2026-11-20"], serde_json::json!({"negative": 1, "neutral": 1, "positive": 1}));
    assert_eq!(st["by_day"]["2026-11-21"], serde_json::json!({"negative": 2, "positive": 2}));
    assert_eq!(st["by_model_version"], serde_json::json!({"v1": 3, "v2": 4}));
    assert_eq!(st["agreement"].as_f64().unwrap(), 5.0 / 7.0);
    let [lo, hi] = wilson_interval(5, 7, Z_95).unwrap();
    let ci = st["agreement_ci95"].as_array().unwrap();
    assert!((ci[0].as_f64().unwrap() - lo).abs() < 1e-12 && (ci[1].as_f64().unwrap() - hi).abs() < 1e-12, "{ci:?}");
    assert!(lo > 0.35 && lo < 0.36 && hi > 0.91 && hi < 0.92, "{lo} {hi}");

    let (_, _, b) = send(&app.router, get("/api/feedback/stats?since=2026-11-21")).await;
    let st = json(&b);
    assert_eq!(st["total"], 4);
    assert_eq!(st["agreement"].as_f64().unwrap(), 0.75);
    let (_, _, b) =
        send(&app.router, get("/api/feedback/stats?since=2026-11-21T00:00:00%2B01:00&model_version=v1")).await;
    let st = json(&b);
    assert_eq!(st["total"], 3, "since is inclusive and +01:00 is 23:00Z: {st}");
    let (_, _, b) = send(&app.router, get("/api/feedback/stats?since=2026-11-21T00:00:00Z&model_version=v1")).await;
    assert_eq!(json(&b)["total"], 0);
    // Stats are kept per hour: a time inside an hour is refused with the hour to use.
    let (s, _, b) =
        send(&app.router, get("/api/feedback/stats?since=2026-11-21T00:00:00.001%2B01:00&model_version=v1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let b = json(&b);
    assert_error(&b, "bad_query");
    assert!(b["detail"].as_str().unwrap().contains("2026-11-20T23:00:00"), "{b}");
    let (s, _, _) = send(&app.router, get("/api/feedback/stats?model_version=%7Bbad%7D")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, _, b) = send(&app.router, get("/api/feedback/stats?model_version=v9")).await;
    assert_eq!(json(&b)["total"], 0);
    let (s, _, b) = send(&app.router, get("/api/feedback/stats?since=last-week")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&json(&b), "bad_query");
}

#[tokio::test]
async fn not_found_method_not_allowed_health_and_metrics() {
    let dir = TempDir::new("api-misc");
    let app = test_app(&dir.0, no_limit());
    let (s, h, b) = send(&app.router, get("/api/nothing")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&json(&b), "not_found");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "require-corp");
    let (s, _, b) = send(&app.router, get("/api/feedback")).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&json(&b), "method_not_allowed");
    let (s, _, b) = send(&app.router, get("/healthz")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&b), serde_json::json!({"status": "ok"}), "the public answer is the status word only");

    post(&app, &valid(1)).await;
    let (s, h, b) = send(&app.router, get("/metrics")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(b).unwrap();
    for needle in [
        "sentiment_http_requests_total{route=\"/api/feedback\",method=\"POST\",status=\"201\"} 1",
        "sentiment_http_requests_total{route=\"other\",method=\"GET\",status=\"404\"} 1",
        "sentiment_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "sentiment_feedback_records 1",
        "sentiment_feedback_records_stored_total 1",
        "sentiment_sync_records_pending 1",
        "sentiment_sync_records_synced 0",
        "sentiment_sync_failures_total 0",
        "sentiment_sync_last_success_timestamp_seconds 0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[tokio::test]
async fn rate_limit_per_forwarded_client() {
    let dir = TempDir::new("api-rate");
    let cfg = ServerConfig {
        rate_limit: RateLimit { per_minute: 60, burst: 2 },
        trusted_proxy_hops: 1,
        ..ServerConfig::default()
    };
    let app = test_app(&dir.0, cfg);
    // Requests through the platform's proxy, which connects from a private address.
    let req = |n: u64, xff: &str| {
        let r = Request::post("/api/feedback")
            .header("content-type", "application/json")
            .header("x-forwarded-for", xff)
            .body(Body::from(valid(n).to_string()))
            .unwrap();
        from_peer(r, "10.0.0.2:40000")
    };
    assert_eq!(send(&app.router, req(1, "9.9.9.9, 203.0.113.7")).await.0, StatusCode::CREATED);
    assert_eq!(send(&app.router, req(2, "203.0.113.7")).await.0, StatusCode::CREATED);
    let (s, h, b) = send(&app.router, req(3, "1.1.1.1, 203.0.113.7")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_error(&json(&b), "rate_limited");
    assert_eq!(h["retry-after"], "1");
    // Another client behind the same proxy is not affected; health checks are never limited.
    assert_eq!(send(&app.router, req(3, "203.0.113.8")).await.0, StatusCode::CREATED);
    for _ in 0..5 {
        assert_eq!(send(&app.router, get("/healthz")).await.0, StatusCode::OK);
    }
    // A client that reaches the port directly cannot choose its key: a fresh X-Forwarded-For
    // on every request does not get it a fresh bucket.
    let direct = |n: u64| {
        let r = Request::post("/api/feedback")
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .body(Body::from(valid(n).to_string()))
            .unwrap();
        from_peer(r, "203.0.113.50:5000")
    };
    let statuses: Vec<StatusCode> = {
        let mut v = Vec::new();
        for n in 10..14 {
            v.push(send(&app.router, direct(n)).await.0);
        }
        v
    };
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS, StatusCode::TOO_MANY_REQUESTS],
        "the burst of 2 holds whatever X-Forwarded-For says"
    );
    app.log.shutdown().await.unwrap();
    let raw: String = std::fs::read_to_string(dir.0.join("segments/00000001.jsonl")).unwrap();
    assert_eq!(raw.lines().count(), 5);
    assert!(!raw.contains("203.0.113"), "client addresses are never stored");
}

#[tokio::test]
async fn each_record_carries_a_pseudonymous_client_key_the_client_cannot_choose() {
    let dir = TempDir::new("api-client-key");
    let secret = b"a secret for this test only";
    let cfg = ServerConfig { trusted_proxy_hops: 1, client_keys: ClientKeys::new(secret), ..no_limit() };
    let app = test_app(&dir.0, cfg);
    let req = |v: serde_json::Value, xff: &str, peer: &str| {
        let r = Request::post("/api/feedback")
            .header("content-type", "application/json")
            .header("x-forwarded-for", xff)
            .body(Body::from(v.to_string()))
            .unwrap();
        from_peer(r, peer)
    };
    let proxy = "10.0.0.2:40000";
    for (n, xff) in [(1, "203.0.113.7"), (2, "9.9.9.9, 203.0.113.7"), (3, "203.0.113.8")] {
        let (s, _, b) = send(&app.router, req(valid(n), xff, proxy)).await;
        assert_eq!(s, StatusCode::CREATED);
        assert!(json(&b).get("client").is_none(), "the answer does not carry the key: {}", json(&b));
    }
    // A retry from elsewhere is the same record; a direct client's X-Forwarded-For is ignored.
    assert_eq!(send(&app.router, req(valid(1), "198.51.100.1", proxy)).await.0, StatusCode::OK);
    assert_eq!(send(&app.router, req(valid(4), "198.51.100.2", "203.0.113.50:5000")).await.0, StatusCode::CREATED);
    // The submission cannot set it.
    let mut forged = valid(5);
    forged["client"] = "0123456789abcdef".into();
    assert_eq!(send(&app.router, req(forged, "203.0.113.7", proxy)).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    app.log.shutdown().await.unwrap();
    let keys = ClientKeys::new(secret);
    let stored: Vec<(String, Option<String>)> =
        stored_records(&dir.0).into_iter().map(|r| (r.submission.id, r.client)).collect();
    let expect = |n: u64, addr: &str| (uuid(n), Some(keys.key(addr)));
    assert_eq!(
        stored,
        [expect(1, "203.0.113.7"), expect(2, "203.0.113.7"), expect(3, "203.0.113.8"), expect(4, "203.0.113.50")]
    );
    assert!(stored.iter().all(|(_, k)| k.as_ref().is_some_and(|k| k.len() == 16)));
    let raw = std::fs::read_to_string(dir.0.join("segments/00000001.jsonl")).unwrap();
    assert!(!raw.contains("203.0.113") && !raw.contains("198.51.100"), "addresses are never stored: {raw}");
}

/// A request body that never yields a byte.
struct NeverEnds;

impl http_body::Body for NeverEnds {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn timeouts_and_load_shedding_answer_503() {
    let dir = TempDir::new("api-shed");
    let cfg = ServerConfig { request_timeout: Duration::from_millis(50), ..no_limit() };
    let app = test_app(&dir.0, cfg);
    // A client that starts a body and never finishes it (slowloris).
    let req =
        Request::post("/api/feedback").header("content-type", "application/json").body(Body::new(NeverEnds)).unwrap();
    let (s, h, b) = send(&app.router, req).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&json(&b), "timeout");
    assert_eq!(h["retry-after"], "1");
    drop(app);

    let dir = TempDir::new("api-shed2");
    let app = test_app(&dir.0, ServerConfig { max_in_flight: 1, ..no_limit() });
    let mut tasks = Vec::new();
    for n in 0..200 {
        let router = app.router.clone();
        tasks.push(tokio::spawn(async move {
            let (s, _, b) = send(&router, post_json("/api/feedback", valid(n).to_string())).await;
            (s, json(&b))
        }));
    }
    let (mut created, mut shed) = (0, 0);
    for t in tasks {
        let (s, b) = t.await.unwrap();
        match s {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_error(&b, "overloaded");
                shed += 1
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert!(shed > 0, "200 concurrent requests with room for 1 must shed some");
    app.log.shutdown().await.unwrap();
    assert_eq!(stored_records(&dir.0).len(), created);
}

/// The order of the layers around the routes: what the protection refuses (a timeout, a shed
/// request, a body over the limit) and what CORS answers itself (a preflight) still carries the
/// CORS and isolation headers and is counted on `/metrics`.
#[tokio::test]
async fn refusals_and_preflights_carry_every_header_and_are_counted() {
    const ORIGIN: &str = "https://me.hf.space";
    let dir = TempDir::new("api-layers");
    let cfg = ServerConfig {
        cors_origins: CorsOrigins::parse(&[ORIGIN]).unwrap(),
        request_timeout: Duration::from_secs(1),
        max_in_flight: 1,
        ..no_limit()
    };
    let app = test_app(&dir.0, cfg);
    let from_origin = |mut req: Request<Body>| {
        req.headers_mut().insert("origin", ORIGIN.parse().unwrap());
        req
    };
    let assert_headers = |what: &str, h: &axum::http::HeaderMap| {
        assert_eq!(h["access-control-allow-origin"], ORIGIN, "{what}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{what}");
        assert_eq!(h["cross-origin-embedder-policy"], "require-corp", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    };

    // A body that never comes holds the only slot until the timeout; meanwhile requests are shed.
    let router = app.router.clone();
    let slow = tokio::spawn(async move {
        let req = Request::post("/api/feedback")
            .header("content-type", "application/json")
            .body(Body::new(NeverEnds))
            .unwrap();
        send(&router, from_origin(req)).await
    });
    let mut shed = None;
    for _ in 0..90 {
        let (s, h, b) = send(&app.router, from_origin(get("/healthz"))).await;
        if s == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some((h, json(&b)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (h, b) = shed.expect("a request beside the one in flight is shed");
    assert_error(&b, "overloaded");
    assert_headers("shed", &h);
    let (s, h, b) = slow.await.unwrap();
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&json(&b), "timeout");
    assert_headers("timeout", &h);

    let mut big = valid(1);
    big["note"] = "x".repeat(17 * 1024).into();
    let (s, h, b) = send(&app.router, from_origin(post_json("/api/feedback", big.to_string()))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&json(&b), "payload_too_large");
    assert_headers("413", &h);

    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/api/feedback")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty())
        .unwrap();
    let (s, h, _) = send(&app.router, from_origin(preflight)).await;
    assert!(s.is_success(), "{s}");
    assert_headers("preflight", &h);

    let (_, h, b) = send(&app.router, from_origin(get("/metrics"))).await;
    assert_headers("metrics", &h);
    let text = String::from_utf8(b).unwrap();
    for needle in [
        "sentiment_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"503\"}",
        "sentiment_http_requests_total{route=\"/api/feedback\",method=\"POST\",status=\"503\"} 1",
        "sentiment_http_requests_total{route=\"/api/feedback\",method=\"POST\",status=\"413\"} 1",
        "sentiment_http_requests_total{route=\"/api/feedback\",method=\"OPTIONS\",status=\"200\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[tokio::test]
async fn cors_allows_only_listed_origins_with_content_type() {
    let dir = TempDir::new("api-cors");
    let cfg = ServerConfig { cors_origins: CorsOrigins::parse(&["https://me.hf.space"]).unwrap(), ..no_limit() };
    let app = test_app(&dir.0, cfg);
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/feedback")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let (s, h, _) = send(&app.router, preflight("https://me.hf.space")).await;
    assert!(s.is_success(), "{s}");
    assert_eq!(h["access-control-allow-origin"], "https://me.hf.space");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let (_, h, _) = send(&app.router, preflight("https://evil.example")).await;
    assert!(h.get("access-control-allow-origin").is_none());
    drop(app);

    // `*`: every origin may post (it used to panic at start).
    let dir = TempDir::new("api-cors-any");
    let app = test_app(&dir.0, ServerConfig { cors_origins: CorsOrigins::parse(&["*"]).unwrap(), ..no_limit() });
    let (s, h, _) = send(&app.router, preflight("https://anyone.example")).await;
    assert!(s.is_success(), "{s}");
    assert_eq!(h["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn static_files_have_types_caching_and_isolation_headers() {
    let dir = TempDir::new("api-static");
    let dist = dir.0.join("dist");
    let model = dir.0.join("model");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>x</title>").unwrap();
    std::fs::write(dist.join("frontend-9f1c5e6d2b3a4c7d_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dist.join("frontend-9f1c5e6d2b3a4c7d.js"), "export {}").unwrap();
    std::fs::write(model.join("manifest.json"), "{}").unwrap();
    std::fs::write(model.join("model.gguf"), b"GGUF").unwrap();
    let cfg = ServerConfig { static_dir: Some(dist.clone()), model_dir: Some(model.clone()), ..no_limit() };
    let app = test_app(&dir.0.join("data"), cfg);

    let cases = [
        ("/", "text/html", "no-cache"),
        ("/frontend-9f1c5e6d2b3a4c7d_bg.wasm", "application/wasm", "public, max-age=31536000, immutable"),
        ("/frontend-9f1c5e6d2b3a4c7d.js", "javascript", "public, max-age=31536000, immutable"),
        ("/model/manifest.json", "application/json", "no-cache"),
        ("/model/model.gguf", "application/octet-stream", "no-cache"),
    ];
    for (path, ctype, cache) in cases {
        let (s, h, _) = send(&app.router, get(path)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(h["content-type"].to_str().unwrap().contains(ctype), "{path}: {:?}", h["content-type"]);
        assert_eq!(h["cache-control"], cache, "{path}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(h["cross-origin-embedder-policy"], "require-corp", "{path}");
    }
    let (s, _, b) = send(&app.router, get("/model/missing.bin")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&json(&b), "not_found");
    // The API still wins over the static fallback.
    assert_eq!(send(&app.router, get("/healthz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn health_is_a_word_in_public_and_details_only_for_the_operator() {
    let dir = TempDir::new("api-health");
    let sync = SyncStatus::enabled();
    let cfg = ServerConfig {
        sync_degraded_after: Duration::from_secs(1800),
        admin_token: Some("s3cret".into()),
        ..no_limit()
    };
    let app = test_app_with_sync(&dir.0, cfg, sync.clone());
    let now = app.clock.load(Ordering::Relaxed);
    let err = "POST https://hub.example/api/datasets/acme/logs/commit/main failed: /data/segments/00000001.jsonl";
    // Failing for 29 minutes: still ok; for 31: degraded (200: it stores records).
    sync.note_failure(now - 29 * 60_000, err.into());
    let (s, _, b) = send(&app.router, get("/healthz")).await;
    assert_eq!((s, json(&b)), (StatusCode::OK, serde_json::json!({"status": "ok"})));
    app.clock.fetch_add(2 * 60_000, Ordering::Relaxed);
    let (s, _, b) = send(&app.router, get("/healthz")).await;
    assert_eq!((s, json(&b)), (StatusCode::OK, serde_json::json!({"status": "degraded"})));
    let (_, _, m) = send(&app.router, get("/metrics")).await;
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("sentiment_health_status 1\n") && m.contains("sentiment_sync_failing_seconds 1860\n"), "{m}");
    assert!(!m.contains("hub.example"), "no error text on /metrics");

    // Details: a local unforwarded client, or the admin token; nobody else.
    let details = |peer: &str, xff: Option<&str>, token: Option<&str>| {
        let mut r = Request::get("/healthz/details");
        if let Some(x) = xff {
            r = r.header("x-forwarded-for", x);
        }
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        from_peer(r.body(Body::empty()).unwrap(), peer)
    };
    let (s, _, b) = send(&app.router, details("127.0.0.1:1", None, None)).await;
    assert_eq!(s, StatusCode::OK);
    let b = json(&b);
    assert_eq!(b["status"], "degraded");
    assert!(b["reasons"][0].as_str().unwrap().contains("Hub sync has failed for 31m"), "{b}");
    assert_eq!(b["sync"]["last_error"], err);
    for (peer, xff, token) in
        [("203.0.113.1:1", None, None), ("127.0.0.1:1", Some("203.0.113.1"), None), ("203.0.113.1:1", None, Some("x"))]
    {
        let (s, _, b) = send(&app.router, details(peer, xff, token)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{peer} {xff:?} {token:?}");
        assert_error(&json(&b), "forbidden");
        assert!(!String::from_utf8_lossy(&b).contains("hub.example"));
    }
    let (s, _, _) = send(&app.router, details("203.0.113.1:1", None, Some("s3cret"))).await;
    assert_eq!(s, StatusCode::OK);
    sync.note_success(now);
    assert_eq!(json(&send(&app.router, get("/healthz")).await.2)["status"], "ok");
    drop(app);

    // Ephemeral data dir with sync off: degraded, and the details say why.
    let dir = TempDir::new("api-health-ephemeral");
    let cfg = ServerConfig { persistence: Persistence::Ephemeral { how: "file system tmpfs".into() }, ..no_limit() };
    let app = test_app(&dir.0, cfg);
    assert_eq!(json(&send(&app.router, get("/healthz")).await.2)["status"], "degraded");
    let (_, _, b) = send(&app.router, from_peer(get("/healthz/details"), "[::1]:1")).await;
    let b = json(&b);
    assert!(b["reasons"][0].as_str().unwrap().contains("not on persistent storage (file system tmpfs)"), "{b}");
    assert_eq!(b["data_dir"]["persistent"], false);

    // A log that cannot take records: 503, failing, and the answer names no path.
    app.log.shutdown().await.unwrap();
    let (s, _, b) = send(&app.router, post_json("/api/feedback", valid(1).to_string())).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let b = json(&b);
    assert_error(&b, "storage_unavailable");
    let text = b.to_string();
    assert!(!text.contains(&dir.0.display().to_string()) && !text.contains('/'), "{text}");
    let (s, _, b) = send(&app.router, get("/healthz")).await;
    assert_eq!((s, json(&b)), (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "failing"})));
}

/// Issue 32.2: 10,000 requests with invented methods, paths and model versions leave `/metrics`
/// small: every label's values are bounded.
#[tokio::test]
async fn ten_thousand_junk_requests_leave_metrics_bounded() {
    /// The bound the issue asks us to state.
    const MAX_METRICS_BYTES: usize = 32 * 1024;
    let dir = TempDir::new("api-junk");
    let app = test_app(&dir.0, no_limit());
    for n in 0..10_000u64 {
        let method = axum::http::Method::from_bytes(format!("X{n:05}").as_bytes()).unwrap();
        let req = match n % 4 {
            0 => Request::builder().method(method).uri(format!("/junk/{n}?q={n}")).body(Body::empty()).unwrap(),
            1 => Request::builder().method(method).uri("/api/feedback").body(Body::empty()).unwrap(),
            2 => get(&format!("/api/feedback/stats?model_version=v{n}")),
            // Valid records, each from a different (made-up) model version.
            _ => post_json(
                "/api/feedback",
                body(&uuid(n), "text", "positive", "neutral", &format!("ver-{n}")).to_string(),
            ),
        };
        let (s, _, _) = send(&app.router, req).await;
        assert!(s.is_client_error() || s.is_success(), "{n}: {s}");
    }
    let (_, _, b) = send(&app.router, get("/metrics")).await;
    let text = String::from_utf8(b).unwrap();
    println!("/metrics after 10,000 junk requests: {} bytes, {} lines", text.len(), text.lines().count());
    assert!(text.len() < MAX_METRICS_BYTES, "{} bytes:\n{text}", text.len());
    assert!(text.contains("method=\"OTHER\""), "{text}");
    assert!(text.contains("sentiment_feedback_agreement_samples{model_version=\"(other)\"}"), "{text}");
    assert!(!text.contains("X00001"));
    // The stats answer is bounded too: within one hour, 16 versions and the rest.
    let (_, _, b) = send(&app.router, get("/api/feedback/stats")).await;
    let st = json(&b);
    assert_eq!(st["total"], 2500);
    let versions = st["by_model_version"].as_object().unwrap();
    assert_eq!(versions.len(), 17, "{st}");
    assert_eq!(versions["(other)"], 2500 - 16);
}
