//! The Q4K forms against candle's product and against each other.

use super::super::q8_0::tests::{bits, for_shared_inputs, tile_forms, values};
use super::*;
use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{Device, Module};

#[test]
fn quantizes_activations_as_the_scalar_form() {
    if !supported() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    // Outliers; an all-zero block; both signs of the largest magnitude, in either order
    // (the first decides the sign); ties at .5 after scaling.
    let mut x = values(6 * 256, 5);
    x[256..512].fill(0.0);
    x[600] = -30.0;
    x[700] = 30.0;
    x[800] = 30.0;
    x[900] = -30.0;
    x[1024] = 127.0;
    x[1025..1032].copy_from_slice(&[0.5, -0.5, 1.5, -1.5, 2.5, 126.5, -126.5]);
    let (mut q, mut d, mut sums) = (vec![0i8; x.len()], vec![0f32; 6], vec![0i16; 48]);
    // SAFETY: `supported()` held.
    unsafe { quantize_row_q8k(&x, &mut q, &mut d, &mut sums) };
    let (mut q_want, mut d_want, mut sums_want) = (vec![0i8; x.len()], vec![0f32; 6], vec![0i16; 48]);
    crate::blocks::quantize_row_q8k(&x, &mut q_want, &mut d_want, &mut sums_want);
    assert_eq!(
        d.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        d_want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(q, q_want);
    assert_eq!(sums, sums_want);
    // d = max / -127: the first of ±30 decides its sign.
    assert!(d[2] > 0.0 && d[3] < 0.0, "{d:?}");
}

/// The matrix packed once for each form this CPU has.
fn each_form(q: &QTensor) -> Vec<PackedQ4K> {
    let blocks = Q4KBlocks::of(q, COLS).unwrap().expect("Q4K with 8 | n");
    tile_forms(blocks.n, WIDE_COLS).into_iter().map(|form| PackedQ4K::pack(&blocks, form)).collect()
}

/// Matrices sharing one prepared input give what each gives alone, bit for bit, in every
/// form, for no rows and for single-tile and multi-pass row counts.
#[test]
fn shared_input_gives_each_products_bits() {
    if !supported() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    for_shared_inputs(512, GgmlDType::Q4K, |m, x, matrices| {
        let forms: Vec<Vec<PackedQ4K>> = matrices.iter().map(|(q, _)| each_form(q)).collect();
        for f in 0..forms[0].len() {
            let products: Vec<(&PackedQ4K, &Tensor)> =
                forms.iter().zip(matrices).map(|(packed, (_, bias))| (&packed[f], bias)).collect();
            let shared = PackedQ4K::forward_many(&products, x).unwrap();
            for ((w, bias), got) in products.iter().zip(shared) {
                let alone = w.forward(x, bias).unwrap();
                assert_eq!(bits(&got), bits(&alone), "{:?} m={m} n={}", w.form, w.n);
            }
        }
    });
}

#[test]
pub(crate) fn matches_candles_q4k_product() {
    if !supported() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    let dev = Device::Cpu;
    // Row counts around the tile and pass sizes; one and several blocks.
    for &(m, n, k) in &[(1, 8, 256), (7, 16, 512), (53, 24, 768), (100, 64, 256), (5, 8, 3072), (21, 32, 3072)] {
        let w = values(n * k, 7 + m as u64);
        let x = values(m * k, 11 + n as u64);
        let w_t = Tensor::from_vec(w.clone(), (n, k), &dev).unwrap();
        let x_t = Tensor::from_vec(x.clone(), (m, k), &dev).unwrap();
        let bias = Tensor::from_vec(values(n, 3), n, &dev).unwrap();
        let q = QTensor::quantize(&w_t, GgmlDType::Q4K).unwrap();
        let want = QMatMul::from_qtensor(QTensor::quantize(&w_t, GgmlDType::Q4K).unwrap())
            .unwrap()
            .forward(&x_t)
            .unwrap()
            .broadcast_add(&bias)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let mut first = None;
        for packed in each_form(&q) {
            let dot = packed.form;
            let got = packed.forward(&x_t, &bias).unwrap().to_vec2::<f32>().unwrap();
            // Both sides round f32 sums of terms larger than their total, so the tolerance
            // scales with Σ |w| · |x| (as in the wasm kernel's test).
            for r in 0..m {
                for c in 0..n {
                    let mass: f32 = (0..k).map(|i| (w[c * k + i] * x[r * k + i]).abs()).sum();
                    let (got, want) = (got[r][c], want[r][c]);
                    let msg = format!("{dot:?} m={m} n={n} k={k} [{r}, {c}]: {got} vs {want}");
                    assert!((got - want).abs() <= 1e-5 * (1.0 + mass), "{msg}");
                }
            }
            // The forms' integer sums are exact, so their outputs are the same bits.
            assert_eq!(first.get_or_insert_with(|| got.clone()), &got, "{dot:?} m={m} n={n} k={k}");
        }
    }
    // Extreme activations (±max everywhere, so Q8K values of ±127) against weights whose
    // 4-bit values are all 15: the largest i16 sums the kernel keeps (8 · 2 · 15 · 127).
    let (m, n, k) = (10, 16, 512);
    let x: Vec<f32> = (0..m * k).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
    let w: Vec<f32> = (0..n * k).map(|i| if i % 256 == 0 { -0.01 } else { 1.0 }).collect();
    let w_t = Tensor::from_vec(w, (n, k), &dev).unwrap();
    let x_t = Tensor::from_vec(x, (m, k), &dev).unwrap();
    let bias = Tensor::zeros(n, candle_core::DType::F32, &dev).unwrap();
    let q = QTensor::quantize(&w_t, GgmlDType::Q4K).unwrap();
    let want = QMatMul::from_qtensor(QTensor::quantize(&w_t, GgmlDType::Q4K).unwrap()).unwrap().forward(&x_t).unwrap();
    for packed in each_form(&q) {
        let got = packed.forward(&x_t, &bias).unwrap();
        let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5 * k as f32, "{:?}, extreme inputs: max diff {diff}", packed.form);
    }

    let w = Tensor::zeros((3, 256), candle_core::DType::F32, &dev).unwrap();
    assert!(PackedQ4K::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q4K).unwrap()).unwrap().is_none());
}
