//! Speed of the native packed kernels (`x86::q8_0` for Q8_0, `x86::q4k` for Q4K) against
//! candle's own kernels for the same matrices, on roberta-base's product shapes, and of the
//! Hadamard rotation of q8_0 products' inputs against its portable form. A benchmark,
//! not a test: it prints figures.
//!
//!   RAYON_NUM_THREADS=1 cargo bench -p kernels --bench native_kernels
//!
//! Optional: KERNEL_ROWS=32,2048 (activation rows), KERNEL_BUDGET_S=1 (per cell),
//! KERNEL_CANDLE=0 (skip candle's kernels, which are slow at many rows).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use kernels::rotation::{hadamard_in_place, hadamard_portable};
use kernels::test_inputs::values;
use kernels::PackedMatrix;
use std::time::{Duration, Instant};

/// Median milliseconds of `f` over at least 3 runs and about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut runs = vec![];
    while runs.len() < 3 || start.elapsed() < budget {
        let t = Instant::now();
        f();
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    runs[runs.len() / 2]
}

/// As the trainer's `heap` sets it: glibc serves blocks above 32 MB (the outputs at
/// 4096 rows) with a fresh `mmap` that is faulted in page by page on every call, which would
/// time the kernel together with the page faults.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's parameters; no other thread has started yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() {
    keep_freed_memory();
    // As the trainer does: the AMX form unless SENTIMENT_AMX=0 (to compare it with AVX-512).
    if std::env::var("SENTIMENT_AMX").map(|v| v != "0").unwrap_or(true) {
        println!("AMX form: {}", if kernels::enable_amx() { "on" } else { "not available" });
    }
    let rows: Vec<usize> = std::env::var("KERNEL_ROWS")
        .unwrap_or_else(|_| "32,2048".into())
        .split(',')
        .map(|s| s.trim().parse().expect("a row count"))
        .collect();
    let budget =
        Duration::from_secs_f64(std::env::var("KERNEL_BUDGET_S").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0));
    let with_candle = std::env::var("KERNEL_CANDLE").map(|v| v != "0").unwrap_or(true);
    let dev = Device::Cpu;
    println!("threads: {}", candle_core::utils::get_num_threads());
    println!("| type | rows × in → out | ours ms | ours GMAC/s | candle ms | candle GMAC/s | candle / ours |");
    println!("|---|---|---|---|---|---|---|");
    for dtype in [GgmlDType::Q8_0, GgmlDType::Q4K] {
        for &(k, n) in &[(768, 3072), (3072, 768), (768, 768)] {
            let w = Tensor::from_vec(values(n * k, 1), (n, k), &dev).unwrap();
            let bias = Tensor::zeros(n, candle_core::DType::F32, &dev).unwrap();
            let ours = PackedMatrix::from_qtensor(&QTensor::quantize(&w, dtype).unwrap()).unwrap().expect("a kernel");
            let candle = QMatMul::from_qtensor(QTensor::quantize(&w, dtype).unwrap()).unwrap();
            for &m in &rows {
                let x = Tensor::from_vec(values(m * k, 2), (m, k), &dev).unwrap();
                let gmac = (m * n * k) as f64 / 1e9;
                let ms = time(budget, || {
                    ours.forward(&x, &bias, None).unwrap();
                });
                let (candle_ms, candle_rate, ratio) = if with_candle {
                    let c = time(budget, || {
                        candle.forward(&x).unwrap();
                    });
                    (format!("{c:.2}"), format!("{:.1}", gmac / c * 1e3), format!("{:.2}×", c / ms))
                } else {
                    ("–".into(), "–".into(), "–".into())
                };
                println!(
                    "| {dtype:?} | {m} × {k} → {n} | {ms:.2} | {:.1} | {candle_ms} | {candle_rate} | {ratio} |",
                    gmac / ms * 1e3
                );
            }
        }
    }
    hadamard(budget);
}

/// The Hadamard rotation every q8_0 product's input goes through (`model::rotation`), in blocks
/// of 256, vectorized and portable.
fn hadamard(budget: Duration) {
    println!();
    println!("| Hadamard rotation, blocks of 256 | vectorized µs | portable µs | portable / vectorized |");
    println!("|---|---|---|---|");
    for (m, k) in [(128, 768), (128, 3072)] {
        let mut x = values(m * k, 3);
        let mut rotate = |f: fn(&mut [f32])| time(budget, || x.chunks_exact_mut(256).for_each(f)) * 1e3;
        let fast = rotate(hadamard_in_place);
        let portable = rotate(hadamard_portable);
        println!("| {m} × {k} | {fast:.1} | {portable:.1} | {:.2}× |", portable / fast);
    }
}
