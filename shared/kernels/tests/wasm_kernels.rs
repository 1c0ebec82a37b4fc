#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
//! The wasm simd128 kernels against candle's own ops (the Q8_0 and Q4K products, softmax, exact
//! GELU), and the simd128 Hadamard rotation against its portable form: under node, and with the
//! `relaxed-simd` feature (the worker_relaxed build's kernels) in headless Chromium
//! (`scripts/test-wasm-kernels.sh` runs both, the second with and without V8's AVX-VNNI path).

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use kernels::ops::wasm as wasm_ops;
use kernels::wasm::q4k::{quantize_row_q8k, PackedQ4K};
use kernels::wasm::q8_0::{quantize_row, PackedQ8};
use kernels::wasm::Kernel;
use kernels::PackedMatrix;
use std::borrow::Cow;
use wasm_bindgen_test::wasm_bindgen_test;

#[cfg(not(feature = "tested-forms"))]
compile_error!(
    "the wasm kernel tests report which forms ran: run them with --features tested-forms \
     (scripts/test-wasm-kernels.sh does)"
);

/// Deterministic values with a few outliers, like activations after GELU.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if i % 97 == 0 {
                u * 40.0
            } else {
                u
            }
        })
        .collect()
}

#[wasm_bindgen_test]
fn activations_quantize_exactly_as_candle() {
    // Random rows, an all-zero block, and a block whose products land exactly on .5 (d = 1:
    // amax 127), where rounding must go away from zero as `f32::round` does.
    let mut x = values(3072, 1);
    x[32..64].fill(0.0);
    let ties = [127.0f32, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49999997, -0.49999997];
    x[64..64 + ties.len()].copy_from_slice(&ties);
    for k in [384usize, 768, 3072] {
        let x = &x[..k];
        // `QTensor::quantize` runs `BlockQ8_0::from_float`; its bytes are 34 per block (f16
        // scale, 32 × i8).
        let t = Tensor::from_slice(x, (1, k), &Device::Cpu).unwrap();
        let want = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap().data().unwrap().to_vec();
        let mut q = vec![0i16; k];
        let mut d = vec![0f32; k / 32];
        quantize_row(x, &mut q, &mut d);
        for (b, blk) in want.chunks_exact(34).enumerate() {
            assert_eq!(d[b], half::f16::from_le_bytes([blk[0], blk[1]]).to_f32(), "scale of block {b}");
            let got: Vec<u8> = q[b * 32..][..32].iter().map(|&v| v as i8 as u8).collect();
            assert_eq!(got, blk[2..], "block {b} of a {k}-value row");
        }
    }
}

/// `got` within f32 summation-order rounding of `want`.
fn assert_close(got: &Tensor, want: &[f32], what: &str) {
    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{what}");
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{what} [{j}]: {g} vs {w}");
    }
}

/// The kernels `PackedQ8` runs here: all of the build's but the relaxed one where the engine
/// does not compute it exactly — which `for_kernel` must then refuse.
fn q8_0_kernels() -> Vec<Kernel> {
    let w = Tensor::from_vec(values(4 * 32, 9), (4, 32), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
    let runs = |k: Kernel| PackedQ8::for_kernel(&q, k).unwrap().is_some();
    #[cfg(feature = "relaxed-simd")]
    assert_eq!(runs(Kernel::Relaxed), kernels::wasm::relaxed_u8_dot_is_exact());
    Kernel::all().into_iter().filter(|&k| runs(k)).collect()
}

#[wasm_bindgen_test]
fn relaxed_u8_dot_probe_reads_the_engine() {
    // The script compiles this with what the probe must say: "exact" where V8 has AVX-VNNI
    // (one `vpdpbusd`), "inexact" where it does not (`--no-enable-avx-vnni`: SSSE3, saturating).
    #[cfg(feature = "relaxed-simd")]
    {
        let exact = kernels::wasm::relaxed_u8_dot_is_exact();
        match option_env!("EXPECT_RELAXED_U8_DOT") {
            Some("exact") => assert!(
                exact,
                "V8 with AVX-VNNI computes the unsigned 8-bit dot exactly (with AVX-VNNI-INT8 it does not: \
                 see scripts/test-wasm-kernels.sh)"
            ),
            Some("inexact") => assert!(!exact, "without AVX-VNNI the probe must see saturation"),
            _ => wasm_bindgen_test::console_log!("relaxed u8 dot exact: {exact} (not checked)"),
        }
        assert_eq!(Kernel::best() == Kernel::Relaxed, exact);
    }
    #[cfg(not(feature = "relaxed-simd"))]
    assert_eq!(Kernel::best(), Kernel::Simd128);
}

#[wasm_bindgen_test]
fn q8_0_products_match_candle() {
    let dev = Device::Cpu;
    // Activation row counts around the kernel's 4-row passes; weights of 8-row groups, one
    // 4-row group (4) and both (12); the model's widths.
    let shapes = [
        (1, 384, 4),
        (3, 384, 384),
        (5, 768, 768),
        (7, 768, 12),
        (32, 768, 3072),
        (33, 3072, 768),
        (2, 3072, 8),
        (6, 384, 1536),
    ];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        let w = Tensor::from_vec(values(n * k, 10 + i as u64), (n, k), &dev).unwrap();
        let w = (w * 0.1).unwrap();
        let x = Tensor::from_vec(values(m * k, 100 + i as u64), (m, k), &dev).unwrap();
        let bias = Tensor::from_vec(values(n, 1000 + i as u64), n, &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let want = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap())
            .unwrap()
            .forward(&x)
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        assert_eq!(want.dims(), [m, n]);
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut outputs = Vec::new();
        for kernel in q8_0_kernels() {
            let packed = PackedQ8::for_kernel(&q, kernel).unwrap().expect("Q8_0 with 4 | n");
            let got = packed.forward(&x, &bias).unwrap();
            // Only the order of the f32 sums differs from candle's.
            assert_close(&got, &want, &format!("{kernel:?} {m}x{k}x{n}"));
            outputs.push(got.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        // The kernels' integer sums are exact and their float steps the same: equal bit for bit.
        assert!(outputs.windows(2).all(|o| o[0] == o[1]), "{m}x{k}x{n}: the kernels differ");
        // Through `PackedMatrix` too, as the model builds it (with `Kernel::best`), with a 3-d input.
        let packed = PackedMatrix::from_qtensor(&q).unwrap().expect("a kernel for Q8_0");
        let via_packed = packed.forward(&x.reshape((1, m, k)).unwrap(), &bias, None).unwrap();
        assert_close(&via_packed, &want, &format!("PackedMatrix {m}x{k}x{n}"));
    }
}

#[wasm_bindgen_test]
fn other_shapes_stay_with_candle() {
    let dev = Device::Cpu;
    let w = Tensor::from_vec(values(3 * 768, 7), (3, 768), &dev).unwrap();
    assert!(PackedQ8::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap().is_none());
    assert!(PackedQ4K::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap().is_none());
    let w = Tensor::from_vec(values(256 * 256, 7), (256, 256), &dev).unwrap();
    let q4k = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
    assert!(PackedQ8::from_qtensor(&q4k).unwrap().is_none());
    assert!(PackedQ4K::from_qtensor(&q4k).unwrap().is_some());
    let w = Tensor::from_vec(values(3 * 256, 7), (3, 256), &dev).unwrap();
    assert!(PackedQ4K::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q4K).unwrap()).unwrap().is_none());
}

#[wasm_bindgen_test]
fn a_weight_of_minus_128() {
    // candle's quantization never makes one (|q| ≤ 127), a Q8_0 file from elsewhere may: the
    // simd128 kernel widens it to i16, the relaxed one stores it as 0 (`w + 128`).
    let dev = Device::Cpu;
    let (m, n, k) = (3, 8, 64);
    let w = Tensor::from_vec(values(n * k, 3), (n, k), &dev).unwrap();
    let mut bytes = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap().data().unwrap().to_vec();
    bytes[2 + 5] = i8::MIN as u8; // row 0, block 0, value 5 (after the f16 scale)
    let matrix = || {
        let storage = QStorage::from_data(Cow::Borrowed(&bytes), &dev, GgmlDType::Q8_0).unwrap();
        QTensor::new(storage, (n, k)).unwrap()
    };
    let q = matrix();
    let x = Tensor::from_vec(values(m * k, 4), (m, k), &dev).unwrap();
    let bias = Tensor::zeros(n, candle_core::DType::F32, &dev).unwrap();
    let want = QMatMul::from_qtensor(matrix()).unwrap().forward(&x).unwrap();
    let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for kernel in q8_0_kernels() {
        let packed = PackedQ8::for_kernel(&q, kernel).unwrap().expect("every kernel takes it");
        assert_close(&packed.forward(&x, &bias).unwrap(), &want, &format!("{kernel:?}"));
    }
}

#[wasm_bindgen_test]
fn activations_quantize_to_q8k_exactly_as_candle() {
    // Random rows, an all-zero block, and a block whose largest value is negative (the sign of
    // candle's `iscale` follows it) with ties at .5.
    let mut x = values(3072, 2);
    x[256..512].fill(0.0);
    let ties = [-127.0f32, 0.5, -0.5, 1.5, -1.5, 126.5, -126.5, 0.49999997];
    x[512..512 + ties.len()].copy_from_slice(&ties);
    for k in [256usize, 768, 3072] {
        let x = &x[..k];
        // `BlockQ8K`: f32 d, 256 × i8, 16 × i16 sums of 16 values.
        let t = Tensor::from_slice(x, (1, k), &Device::Cpu).unwrap();
        let want = QTensor::quantize(&t, GgmlDType::Q8K).unwrap().data().unwrap().to_vec();
        let mut q = vec![0i16; k];
        let (mut d, mut sums) = (vec![0f32; k / 256], vec![0f32; k / 32]);
        quantize_row_q8k(x, &mut q, &mut d, &mut sums);
        for (b, blk) in want.chunks_exact(4 + 256 + 32).enumerate() {
            assert_eq!(d[b], f32::from_le_bytes(blk[..4].try_into().unwrap()), "scale of block {b}");
            let got: Vec<u8> = q[b * 256..][..256].iter().map(|&v| v as i8 as u8).collect();
            assert_eq!(got, blk[4..260], "block {b} of a {k}-value row");
            for s in 0..8 {
                let bsum = |i: usize| i16::from_le_bytes([blk[260 + 2 * i], blk[261 + 2 * i]]) as f32;
                assert_eq!(sums[b * 8 + s], bsum(2 * s) + bsum(2 * s + 1), "sum of {b}.{s}");
            }
        }
    }
}

fn q4k_dequantized(w: &Tensor) -> Tensor {
    QTensor::quantize(w, GgmlDType::Q4K).unwrap().dequantize(&Device::Cpu).unwrap()
}

#[wasm_bindgen_test]
fn q4k_products_match_candle() {
    let dev = Device::Cpu;
    // Activation row counts around the kernel's 4-row passes; weights of 8-row groups, one
    // 4-row group (4) and both (12); the model's widths.
    let shapes =
        [(1, 256, 4), (3, 512, 384), (5, 768, 768), (7, 768, 12), (32, 768, 3072), (33, 3072, 768), (2, 256, 8)];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        let w = (Tensor::from_vec(values(n * k, 20 + i as u64), (n, k), &dev).unwrap() * 0.1).unwrap();
        let x = Tensor::from_vec(values(m * k, 200 + i as u64), (m, k), &dev).unwrap();
        let bias = Tensor::from_vec(values(n, 2000 + i as u64), n, &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        let want = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q4K).unwrap())
            .unwrap()
            .forward(&x)
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        assert_eq!(want.dims(), [m, n]);
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Both sides round f32 sums of terms larger than their (cancelling) total — candle's
        // wasm kernel in its own order — so the tolerance scales with |W| · |x| (W as candle
        // dequantizes it). A wrong scale, min or nibble is off by ~|w| · |x|.
        let w_abs = q4k_dequantized(&w).abs().unwrap();
        let bound =
            x.abs().unwrap().matmul(&w_abs.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let check = |got: Tensor, what: &str| {
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got.len(), want.len(), "{what}");
            for (j, ((g, w), b)) in got.iter().zip(&want).zip(&bound).enumerate() {
                assert!((g - w).abs() <= 1e-5 * (1.0 + b), "{what} {m}x{k}x{n} [{j}]: {g} vs {w} (|W|·|x| {b})");
            }
            got
        };
        let mut outputs = Vec::new();
        for kernel in Kernel::all() {
            let packed = PackedQ4K::for_kernel(&q, kernel).unwrap().expect("Q4K with 4 | n");
            outputs.push(check(packed.forward(&x, &bias).unwrap(), &format!("{kernel:?}")));
        }
        // The same integer sums, the same float steps.
        assert!(outputs.windows(2).all(|o| o[0] == o[1]), "{m}x{k}x{n}: the kernels differ");
        let packed = PackedMatrix::from_qtensor(&q).unwrap().expect("a kernel for Q4K");
        check(packed.forward(&x.reshape((1, m, k)).unwrap(), &bias, None).unwrap(), "PackedMatrix");
    }
}

#[wasm_bindgen_test]
fn gelu_matches_candle() {
    let dev = Device::Cpu;
    // A fine grid over the range that matters (and past erf's ±4 clamp), plus a length that
    // leaves a remainder after the 4-lane chunks.
    let xs: Vec<f32> = (-12_001..12_000).map(|i| i as f32 * 1e-3).collect();
    let x = Tensor::from_vec(xs.clone(), xs.len(), &dev).unwrap();
    let want = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
    let got = wasm_ops::gelu_erf(&x).unwrap().to_vec1::<f32>().unwrap();
    // The rational erf is off by up to ~2e-7 near its ±4 clamp, times x there: 1.2e-6 at most
    // over this grid — far below the Q8_0 step (amax / 127) the next product quantizes to.
    for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
        assert!((g - w).abs() <= 2e-6 * (1.0 + w.abs()), "gelu({x}): {g} vs candle's {w}");
    }
}

#[wasm_bindgen_test]
fn softmax_matches_candle() {
    let dev = Device::Cpu;
    // Attention-shaped scores with the model's padding mask (f32::MIN added), and a row
    // length that is not a multiple of 4.
    for (rows, d) in [(12 * 32, 32usize), (10, 7), (3, 512)] {
        let mut xs: Vec<f32> = values(rows * d, d as u64).iter().map(|v| v * 8.0).collect();
        for r in 0..rows {
            for j in d - d / 4..d {
                if r % 2 == 0 && j > 0 {
                    xs[r * d + j] += f32::MIN;
                }
            }
        }
        let x = Tensor::from_vec(xs, (rows, d), &dev).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = wasm_ops::softmax_last_dim(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1e-30) + 1e-30, "[{j}] of {rows}x{d}: {g} vs {w}");
        }
    }
}

/// The simd128 Hadamard rotation gives the portable form's bits.
#[wasm_bindgen_test]
fn hadamard_rotation_matches_the_portable_form() {
    use kernels::rotation::{hadamard_in_place, hadamard_portable};
    let x = values(1024, 7);
    for n in [8usize, 16, 32, 64, 128, 256] {
        let (mut fast, mut portable) = (x.clone(), x.clone());
        fast.chunks_exact_mut(n).for_each(hadamard_in_place);
        portable.chunks_exact_mut(n).for_each(hadamard_portable);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&portable), "blocks of {n}");
    }
}

/// Runs the tests that exercise the browser's kernel forms, then prints one line per form (run,
/// or not run and why) and fails when this build and engine have a form that did not run: the
/// forms give the same bits, so the product tests alone pass whichever ran
/// (`kernels::tested_forms`).
#[wasm_bindgen_test]
fn every_form_this_engine_has_ran() {
    q8_0_products_match_candle();
    q4k_products_match_candle();
    let (lines, missed) = kernels::tested_forms::report();
    for line in lines {
        wasm_bindgen_test::console_log!("kernel form {line}");
    }
    assert!(missed.is_empty(), "this engine has forms that no test ran (a dispatch that skips them?): {missed:?}");
}
