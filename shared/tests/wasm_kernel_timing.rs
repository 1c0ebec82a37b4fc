#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
//! A benchmark, not a test (ignored; prints figures): the browser kernels' Q8_0 and Q4K products
//! for roberta-base's 12 layers at 32 activation rows (one 32-token tweet), best of eight, in
//! headless Chromium. `scripts/bench-wasm-kernels.sh` runs it for the simd128 and the
//! Relaxed SIMD forms, with and without V8's AVX-VNNI path.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use shared::model::wasm_matmul::{Kernel, PackedQ8};
use shared::model::wasm_q4k::PackedQ4K;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Best-of-eight milliseconds for one forward's worth of products: per layer four 768 → 768,
/// one 768 → 3072 and one 3072 → 768, at 32 rows.
fn best_ms(product: &dyn Fn(usize, &Tensor, &Tensor)) -> f64 {
    let dev = Device::Cpu;
    let shapes = [(768usize, 768usize, 4usize), (768, 3072, 1), (3072, 768, 1)];
    let inputs: Vec<_> = shapes.iter().map(|&(k, _, _)| Tensor::randn(0f32, 1.0, (1, 32, k), &dev).unwrap()).collect();
    let mut best = f64::MAX;
    for _ in 0..8 {
        let t0 = js_sys::Date::now();
        for (i, (&(_, n, per_layer), x)) in shapes.iter().zip(&inputs).enumerate() {
            let bias = Tensor::zeros(n, DType::F32, &dev).unwrap();
            for _ in 0..12 * per_layer {
                product(i, x, &bias);
            }
        }
        best = best.min(js_sys::Date::now() - t0);
    }
    best
}

fn weights(dtype: GgmlDType) -> Vec<QTensor> {
    let dev = Device::Cpu;
    [(768usize, 768usize), (768, 3072), (3072, 768)]
        .iter()
        .map(|&(k, n)| QTensor::quantize(&Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap(), dtype).unwrap())
        .collect()
}

#[wasm_bindgen_test]
#[ignore]
fn products_of_one_tweet() {
    for kernel in Kernel::all() {
        let name = kernel.name();
        let q8: Option<Vec<_>> =
            weights(GgmlDType::Q8_0).iter().map(|w| PackedQ8::for_kernel(w, kernel).unwrap()).collect();
        match q8 {
            Some(q8) => {
                let ms = best_ms(&|i, x, b| drop(q8[i].forward(x, b).unwrap()));
                console_log!("Q8_0 products, {name}: {ms} ms");
            }
            None => console_log!("Q8_0 products, {name}: not exact on this engine"),
        }
        let q4k: Vec<_> =
            weights(GgmlDType::Q4K).iter().map(|w| PackedQ4K::for_kernel(w, kernel).unwrap().unwrap()).collect();
        let ms = best_ms(&|i, x, b| drop(q4k[i].forward(x, b).unwrap()));
        console_log!("Q4K products, {name}: {ms} ms");
    }
}
