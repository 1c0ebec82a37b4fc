//! Native inference speed of model bundles: median milliseconds per forward call for batch 1
//! and 32 at 16/64/128 tokens, the same cells (random ids in [3, 1000), no padding) as
//! `../shared/tools/ref/bench_peers.py`. A benchmark, not a test: it prints figures.
//!
//!   BENCH_BUNDLES="q8_0=dir,q4k=dir,f32=dir" RAYON_NUM_THREADS=2 \
//!     cargo bench -p sentiment-trainer --bench native_predict
//!
//! Optional: BENCH_BATCHES=1,32 BENCH_SEQS=16,64,128 BENCH_BUDGET_S=3 BENCH_OUT=file.json.
//! `scripts/bench-native.sh` runs it next to the PyTorch / ONNX Runtime peers and prints ratios.

use model::tokenize::PaddedBatch;
use sentiment_trainer::predict::Predictor;
use std::time::{Duration, Instant};

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().parse().unwrap()).collect()
}

/// A small deterministic generator for the token ids.
fn ids(batch: usize, seq: usize, seed: &mut u64) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|_| {
            (0..seq)
                .map(|_| {
                    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    3 + ((*seed >> 33) % 997) as u32
                })
                .collect()
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    // As `sentiment-trainer` does, so the figures are its.
    sentiment_trainer::apply_process_settings();
    let bundles = std::env::var("BENCH_BUNDLES").unwrap_or_default();
    if bundles.is_empty() {
        eprintln!("set BENCH_BUNDLES=name=dir[,name=dir...] (see the header of this file); nothing to do");
        return;
    }
    let batches = list("BENCH_BATCHES", "1,32");
    let seqs = list("BENCH_SEQS", "16,64,128");
    let budget =
        Duration::from_secs_f64(std::env::var("BENCH_BUDGET_S").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0));
    println!("threads: {}", candle_core::utils::get_num_threads());
    println!("| bundle | batch | seq | median ms | min ms | iters | sequences/s |");
    println!("|---|---|---|---|---|---|---|");
    let mut cells = vec![];
    for spec in bundles.split(',') {
        let (name, dir) = spec.split_once('=').expect("name=dir");
        let p = Predictor::open_bundle(std::path::Path::new(dir)).expect("bundle opens");
        let pad = p.classifier.config().pad_token_id;
        let mut seed = 0x5eed;
        for &b in &batches {
            for &s in &seqs {
                let batch = PaddedBatch::new(&ids(b, s, &mut seed), pad);
                let heavy = b * s >= 2048;
                for _ in 0..if heavy { 1 } else { 3 } {
                    p.classifier.forward(&batch).unwrap();
                }
                let mut times = vec![];
                let start = Instant::now();
                while times.len() < if heavy { 3 } else { 5 } || start.elapsed() < budget {
                    let t = Instant::now();
                    p.classifier.forward(&batch).unwrap();
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let (med, min) = (median(times.clone()), times.iter().cloned().fold(f64::MAX, f64::min));
                println!(
                    "| {name} | {b} | {s} | {med:.1} | {min:.1} | {} | {:.1} |",
                    times.len(),
                    b as f64 * 1e3 / med
                );
                cells.push(serde_json::json!({"bundle": name, "batch": b, "seq": s, "median_ms": med, "min_ms": min, "iters": times.len()}));
            }
        }
    }
    if let Ok(out) = std::env::var("BENCH_OUT") {
        std::fs::write(&out, serde_json::to_string_pretty(&cells).unwrap()).unwrap();
        eprintln!("wrote {out}");
    }
}
