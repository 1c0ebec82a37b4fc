//! Hostile input: 12,000 generated bodies (the few that happen to be valid are skipped) (malformed, oversized, wrongly typed, wrongly
//! encoded, invalid values) through the full app. Only 4xx, no panic, nothing stored.
//! Generated from a fixed seed so a failure is reproducible; the seed can be changed with
//! `SENTIMENT_FUZZ_SEED`.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use sentiment_server::http::{RateLimit, ServerConfig};

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

fn weird_value(r: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match r.below(14) {
        0 => json!(null),
        1 => json!(true),
        2 => json!(r.next() as i64),
        3 => json!(-1.5e300),
        4 => json!(""),
        5 => json!("   "),
        6 => json!("x".repeat(r.below(6000) as usize)),
        7 => json!([1, 2, 3]),
        8 => json!({"a": 1}),
        9 => json!("positive"),
        10 => json!(1.0000001),
        11 => json!("\u{0}\u{1f}\u{7f}"),
        12 => json!("😀".repeat(r.below(3000) as usize)),
        _ => json!(-0.0),
    }
}

/// A body that must be refused, and how it was made (for failure messages).
fn hostile(r: &mut Rng, n: u64) -> (Vec<u8>, &'static str, &'static str) {
    let fields = ["id", "text", "predicted", "scores", "label", "model_version", "note"];
    let base = valid(1_000_000 + n);
    let ctype = if r.below(20) == 0 {
        *r.pick(&["text/plain", "", "application/xml", "application/json; charset=latin1"])
    } else {
        "application/json"
    };
    match r.below(9) {
        // A field replaced by a value of the wrong type or an invalid value.
        0 => {
            let mut v = base;
            let f = *r.pick(&fields[..6]);
            v[f] = weird_value(r);
            (v.to_string().into_bytes(), ctype, "wrong type/value")
        }
        // A required field missing.
        1 => {
            let mut v = base;
            v.as_object_mut().unwrap().remove(*r.pick(&fields[..6]));
            (v.to_string().into_bytes(), ctype, "missing field")
        }
        // An unknown field.
        2 => {
            let mut v = base;
            let name = *r.pick(&["received_at", "ip", "Id", "extra", "__proto__", ""]);
            v[name] = weird_value(r);
            (v.to_string().into_bytes(), ctype, "unknown field")
        }
        // Truncated JSON.
        3 => {
            let s = base.to_string();
            let cut = 1 + r.below(s.len() as u64 - 1) as usize;
            (s.as_bytes()[..cut].to_vec(), ctype, "truncated")
        }
        // Random bytes flipped (often invalid UTF-8 or broken syntax); if the result still
        // parses to something valid, make it invalid.
        4 => {
            let mut b = base.to_string().into_bytes();
            for _ in 0..1 + r.below(4) {
                let i = r.below(b.len() as u64) as usize;
                b[i] = r.next() as u8;
            }
            (b, ctype, "flipped bytes")
        }
        // Oversized bodies: valid JSON bigger than 16 KiB.
        5 => {
            let mut v = base;
            v["note"] = "y".repeat(16 * 1024 + r.below(100_000) as usize).into();
            (v.to_string().into_bytes(), ctype, "oversized")
        }
        // Not an object at all.
        6 => {
            let s = match r.below(6) {
                0 => "null".to_owned(),
                1 => "[]".to_owned(),
                2 => "\"text\"".to_owned(),
                3 => "42".to_owned(),
                4 => String::new(),
                _ => "{".repeat(1 + r.below(5000) as usize),
            };
            (s.into_bytes(), ctype, "not an object")
        }
        // Wrong encodings: UTF-16, Latin-1 bytes, lone surrogate escapes, NUL bytes.
        7 => {
            let s = base.to_string();
            let b = match r.below(4) {
                0 => s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
                1 => s.replace("great", "gr\u{e9}at").chars().map(|c| c as u32 as u8).collect(),
                2 => s.replace("great", "\\udc00great").into_bytes(),
                _ => s.replace(':', ":\0").into_bytes(),
            };
            (b, ctype, "bad encoding")
        }
        // Score out of range or label out of set.
        _ => {
            let mut v = base;
            match r.below(3) {
                0 => v["scores"]["positive"] = serde_json::json!(1.0 + (r.below(1000) as f64 + 1.0) / 1000.0),
                1 => v["scores"]["negative"] = serde_json::json!(-((r.below(1000) as f64 + 1.0) / 1000.0)),
                _ => v["label"] = serde_json::json!(format!("label{}", r.below(100))),
            }
            (v.to_string().into_bytes(), ctype, "invalid value")
        }
    }
}

/// True when the generator happened to make a body the server must accept.
fn accidentally_valid(bytes: &[u8], ctype: &str) -> bool {
    ctype.starts_with("application/json")
        && bytes.len() <= 16 * 1024
        && serde_json::from_slice::<shared::FeedbackSubmission>(bytes)
            .is_ok_and(|s| s.validate(&shared::SENTIMENT_LABELS).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_thousand_hostile_bodies_get_4xx_and_store_nothing() {
    let seed = std::env::var("SENTIMENT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234_u64);
    let dir = TempDir::new("fuzz");
    let cfg = ServerConfig { rate_limit: RateLimit { per_minute: 0, burst: 0 }, ..ServerConfig::default() };
    let app = test_app(&dir.0, cfg);
    let mut rng = Rng(seed | 1);
    let mut by_status = std::collections::BTreeMap::new();
    let mut skipped = 0u32;
    for n in 0..12_000u64 {
        let (bytes, ctype, kind) = hostile(&mut rng, n);
        if accidentally_valid(&bytes, ctype) {
            skipped += 1;
            continue;
        }
        let mut req = Request::post("/api/feedback");
        if !ctype.is_empty() {
            req = req.header("content-type", ctype);
        }
        let (status, _, body) = send(&app.router, req.body(Body::from(bytes.clone())).unwrap()).await;
        assert!(
            status.is_client_error(),
            "case {n} ({kind}) got {status}: {}\nbody sent: {}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
        let err = json(&body);
        assert!(err["error"].is_string() && err["detail"].is_string(), "case {n}: {err}");
        *by_status.entry(status.as_u16()).or_insert(0u32) += 1;
    }
    println!("statuses: {by_status:?}, accidentally valid and skipped: {skipped}");
    let sent: u32 = by_status.values().sum();
    assert!(sent >= 10_000, "at least 10,000 hostile bodies sent, got {sent}");
    assert!(by_status.len() >= 4, "the generator reaches several rejection paths: {by_status:?}");
    app.log.shutdown().await.unwrap();
    assert!(stored_records(&dir.0).is_empty());
    assert_eq!(app.log.counters().appended.load(std::sync::atomic::Ordering::Relaxed), 0);
}
