#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
//! A benchmark, not a test (ignored; prints figures): the browser kernels' Q8_0 and Q4K products
//! for roberta-base's 12 layers at 32 activation rows (one 32-token tweet), best of eight, in
//! headless Chromium. `scripts/bench-wasm-kernels.sh` runs it for the simd128 and the
//! Relaxed SIMD forms, with and without V8's AVX-VNNI path.
//!
//! Each form runs twice: on one layer's six matrices used for all 12 layers ("cached": ~8 MB
//! at Q8_0, in the CPU's caches after the first pass) and on 12 layers' own weights
//! ("streamed": ~96 MB at Q8_0, read from memory as in a real forward).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use kernels::wasm::q4k::PackedQ4K;
use kernels::wasm::{q8_0::PackedQ8, Kernel};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Per layer: four 768 → 768, one 768 → 3072 and one 3072 → 768, as (k, n).
const SHAPES: [(usize, usize); 6] = [(768, 768), (768, 768), (768, 768), (768, 768), (768, 3072), (3072, 768)];
const LAYERS: usize = 12;

/// Best-of-eight milliseconds for one forward's worth of products at 32 rows; `product(l, j, x,
/// bias)` runs layer `l`'s `j`th product.
fn best_ms(product: &dyn Fn(usize, usize, &Tensor, &Tensor)) -> f64 {
    let dev = Device::Cpu;
    let inputs: Vec<_> = SHAPES.iter().map(|&(k, _)| Tensor::randn(0f32, 1.0, (1, 32, k), &dev).unwrap()).collect();
    let biases: Vec<_> = SHAPES.iter().map(|&(_, n)| Tensor::zeros(n, DType::F32, &dev).unwrap()).collect();
    let mut best = f64::MAX;
    for _ in 0..8 {
        let t0 = js_sys::Date::now();
        for l in 0..LAYERS {
            for (j, (x, b)) in inputs.iter().zip(&biases).enumerate() {
                product(l, j, x, b);
            }
        }
        best = best.min(js_sys::Date::now() - t0);
    }
    best
}

/// `layers` layers' weights, each layer's six matrices in `SHAPES` order.
fn weights(dtype: GgmlDType, layers: usize) -> Vec<QTensor> {
    let dev = Device::Cpu;
    (0..layers * SHAPES.len())
        .map(|i| {
            let (k, n) = SHAPES[i % SHAPES.len()];
            QTensor::quantize(&Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap(), dtype).unwrap()
        })
        .collect()
}

#[wasm_bindgen_test]
#[ignore]
fn products_of_one_tweet() {
    for (what, layers) in [("cached", 1), ("streamed", LAYERS)] {
        let at = |l: usize, j: usize| (l % layers) * SHAPES.len() + j;
        for kernel in Kernel::all() {
            let name = kernel.name();
            let q8: Option<Vec<_>> =
                weights(GgmlDType::Q8_0, layers).iter().map(|w| PackedQ8::for_kernel(w, kernel).unwrap()).collect();
            match q8 {
                Some(q8) => {
                    let ms = best_ms(&|l, j, x, b| drop(q8[at(l, j)].forward(x, b).unwrap()));
                    console_log!("Q8_0 products, {name}, {what}: {ms} ms");
                }
                None => console_log!("Q8_0 products, {name}, {what}: not exact on this engine"),
            }
            let q4k: Vec<_> = weights(GgmlDType::Q4K, layers)
                .iter()
                .map(|w| PackedQ4K::for_kernel(w, kernel).unwrap().unwrap())
                .collect();
            let ms = best_ms(&|l, j, x, b| drop(q4k[at(l, j)].forward(x, b).unwrap()));
            console_log!("Q4K products, {name}, {what}: {ms} ms");
        }
    }
}
