//! Every Q8_0 form against candle's product and against each other, bit for bit.

use super::*;
use crate::blocks::BLOCK_BYTES;
use crate::x86::ByteDot;
use candle_core::quantized::GgmlDType;
use candle_core::Device;

/// A deterministic matrix of values in [-1, 1) with some large outliers, like activations.
pub(crate) fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut v = crate::test_inputs::values(len, seed);
    v.iter_mut().step_by(97).for_each(|x| *x *= 20.0);
    v
}

#[test]
fn quantizes_activations_as_candle_does() {
    if !supported() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    // Random values, an all-zero block, and a block whose products land exactly on .5
    // (d = 1: amax 127), where rounding must go away from zero as `f32::round` does.
    let mut x = values(768, 1);
    x[32..64].fill(0.0);
    let ties = [127.0f32, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49999997, -0.49999997];
    x[64..64 + ties.len()].copy_from_slice(&ties);
    // `QTensor::quantize` runs `BlockQ8_0::from_float`; 34 bytes per block (f16 scale, 32 × i8).
    let t = Tensor::from_slice(&x, (1, x.len()), &Device::Cpu).unwrap();
    let want = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap().data().unwrap().to_vec();
    let mut q = vec![0i8; x.len()];
    let mut d = vec![0f32; x.len() / 32];
    // SAFETY: `supported()` held.
    unsafe { quantize_row(&x, &mut q, &mut d) };
    for (b, blk) in want.chunks_exact(BLOCK_BYTES).enumerate() {
        assert_eq!(d[b], f16::from_le_bytes([blk[0], blk[1]]).to_f32(), "scale of block {b}");
        let got: Vec<u8> = q[b * 32..][..32].iter().map(|&v| v as u8).collect();
        assert_eq!(got, blk[2..], "block {b}");
    }
}

/// candle's Q8_0 product as its portable and AVX2 paths compute it (ggml's): activations
/// quantized to Q8_0 by `BlockQ8_0::from_float`, each block's integer dot scaled by both
/// scales. Written with dequantized operands so that it does not depend on the CPU: with
/// AVX-512 VNNI and `k` a multiple of 256, candle 0.11 quantizes the activations to Q8K
/// instead (one scale per 256 values), a coarser product than the kernel's and the browser's.
fn q8_0_product(w: &Tensor, x: &Tensor) -> Tensor {
    let dequantized = |t: &Tensor| QTensor::quantize(t, GgmlDType::Q8_0).unwrap().dequantize(&Device::Cpu).unwrap();
    dequantized(x).matmul(&dequantized(w).t().unwrap()).unwrap()
}

/// The forms of the kernels' inner step this CPU has: each is tested (`tested_forms` reports
/// which ran).
pub(crate) fn byte_dots() -> Vec<ByteDot> {
    let forms = [ByteDot::Avx2, ByteDot::AvxVnni, ByteDot::Avx512Vnni];
    forms.into_iter().filter(|d| d.available()).collect()
}

/// The forms this CPU has for `n` weight rows: every inner step of the narrow tiles, and
/// the wide tiles (groups of `wide_cols` rows) where the row count allows. Each is tested.
pub(crate) fn tile_forms(n: usize, wide_cols: usize) -> Vec<TileForm> {
    let mut forms: Vec<TileForm> = byte_dots().into_iter().map(TileForm::Narrow).collect();
    if TileForm::Wide.available() && n.is_multiple_of(wide_cols) {
        forms.push(TileForm::Wide);
    }
    forms
}

/// The matrix packed once for each form this CPU has.
fn each_form(q: &QTensor) -> Vec<PackedQ8> {
    let blocks = Q8_0Blocks::of(q, COLS).unwrap().expect("Q8_0 with 8 | n");
    let mut forms = tile_forms(blocks.n, WIDE_COLS);
    // The tests opt in to AMX as a program does (`crate::enable_amx`).
    crate::x86::amx::enable();
    if TileForm::Amx.available() && blocks.n.is_multiple_of(AMX_COLS) {
        forms.push(TileForm::Amx);
    }
    forms.into_iter().map(|form| PackedQ8::pack(&blocks, form)).collect()
}

/// Matrices sharing one prepared input give what each gives alone, bit for bit, in every
/// form, rotated or not, for single-pass and multi-pass row counts.
#[test]
fn shared_input_gives_each_products_bits() {
    if !supported() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    for_shared_inputs(256, GgmlDType::Q8_0, |m, x, matrices| {
        let forms: Vec<Vec<PackedQ8>> = matrices.iter().map(|(q, _)| each_form(q)).collect();
        for f in 0..forms[0].len() {
            for rotation in [None, Some(64)] {
                let products: Vec<(&PackedQ8, &Tensor)> =
                    forms.iter().zip(matrices).map(|(packed, (_, bias))| (&packed[f], bias)).collect();
                let shared = PackedQ8::forward_many(&products, x, rotation).unwrap();
                for ((w, bias), got) in products.iter().zip(shared) {
                    let alone = w.forward(x, bias, rotation).unwrap();
                    assert_eq!(bits(&got), bits(&alone), "{:?} m={m} n={} {rotation:?}", w.form, w.n);
                }
            }
        }
    });
}

/// Runs `check(m, x, matrices)` for inputs `x` of 0, 5, 64 and 100 rows (none, one tile,
/// one pass, several passes) of `k` values, and three matrices of 32, 96 and 64 rows
/// quantized to `dtype`, each with its bias: the cases of the shared-input tests.
pub(crate) fn for_shared_inputs(k: usize, dtype: GgmlDType, check: impl Fn(usize, &Tensor, &[(QTensor, Tensor)])) {
    let dev = Device::Cpu;
    for m in [0, 5, 64, 100] {
        let x = Tensor::from_vec(values(m * k, 5), (m, k), &dev).unwrap();
        let matrices: Vec<(QTensor, Tensor)> = [32, 96, 64]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let w = Tensor::from_vec(values(n * k, 20 + i as u64), (n, k), &dev).unwrap();
                let bias = Tensor::from_vec(values(n, 30 + i as u64), n, &dev).unwrap();
                (QTensor::quantize(&w, dtype).unwrap(), bias)
            })
            .collect();
        check(m, &x, &matrices);
    }
}

/// A tensor's values, to compare bit for bit.
pub(crate) fn bits(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
pub(crate) fn matches_candles_q8_0_product() {
    if !supported() {
        eprintln!("skipped: this CPU has no AVX2");
        return;
    }
    let dev = Device::Cpu;
    // Row counts around the tile and pass sizes (and each of the AMX tile's row counts:
    // 1, 2, 3-4, 5-8, 9-16); 3 rows of output stay with candle.
    let shapes = [(1, 8, 32), (1, 16, 32), (2, 48, 64), (3, 16, 800), (7, 32, 64)];
    let shapes = shapes.into_iter().chain([(53, 24, 96), (100, 64, 256), (61, 32, 800), (45, 96, 128)]);
    for (m, n, k) in shapes {
        let w = Tensor::from_vec(values(n * k, 7 + m as u64), (n, k), &dev).unwrap();
        let x = Tensor::from_vec(values(m * k, 11 + n as u64), (m, k), &dev).unwrap();
        let bias = Tensor::from_vec(values(n, 3), n, &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let want = q8_0_product(&w, &x).broadcast_add(&bias).unwrap();
        let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let mut first: Option<Vec<f32>> = None;
        for packed in each_form(&q) {
            let dot = packed.form;
            let got = packed.forward(&x, &bias, None).unwrap();
            let diff = (&got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "{dot:?} m={m} n={n} k={k}: max diff {diff} (outputs up to {scale})"
            );
            // The forms' integer sums are exact, so their outputs are the same bits.
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(first.get_or_insert_with(|| got.clone()), &got, "{dot:?} m={m} n={n} k={k}");
            // Rotating inside the kernel is rotating the input first.
            let rotated = crate::rotation::rotate_rows(&x, 32).unwrap();
            let want = packed.forward(&rotated, &bias, None).unwrap();
            let got = packed.forward(&x, &bias, Some(32)).unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(diff, 0.0, "{dot:?} m={m} n={n} k={k}: rotated in the kernel differs by {diff}");
        }
    }
    // Every weight and activation at ±127 after quantization: the largest pair sums
    // `vpmaddubsw` sees (2 · 127², which must not saturate i16).
    let (m, n, k) = (14, 32, 64);
    let signs = |len: usize, seed: usize| -> Vec<f32> {
        (0..len).map(|i| if (i * 7 + seed).is_multiple_of(3) { -1.0 } else { 1.0 }).collect()
    };
    let w = Tensor::from_vec(signs(n * k, 1), (n, k), &dev).unwrap();
    let x = Tensor::from_vec(signs(m * k, 2), (m, k), &dev).unwrap();
    let bias = Tensor::zeros(n, candle_core::DType::F32, &dev).unwrap();
    let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
    let want = q8_0_product(&w, &x);
    for packed in each_form(&q) {
        let got = packed.forward(&x, &bias, None).unwrap();
        let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5 * k as f32, "{:?}, ±1 inputs: max diff {diff}", packed.form);
    }

    let w = Tensor::zeros((3, 32), candle_core::DType::F32, &dev).unwrap();
    assert!(PackedQ8::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap().is_none());
}
