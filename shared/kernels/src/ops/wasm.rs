//! simd128 versions of the two element-wise inference ops that were the largest cost after the
//! matrix products on wasm: candle's CPU softmax and exact GELU call libm's `expf` / `erff`
//! one value at a time (and the softmax goes through rayon, single-threaded here), which took
//! ~12 ms each per roberta-base forward on a 32-token tweet.
//!
//! Both are polynomial approximations accurate to a few ulp: the results differ from candle's
//! (libm, the same on native) by ~1e-7 relative, far inside the 1e-4 on the scores that the
//! end-to-end test holds the browser to. Only compiled for wasm32 with simd128.

use crate::tensor::with_f32_slice;
use candle_core::{Result, Tensor};
use core::arch::wasm32::*;

/// Softmax over the last dimension (inference only: no gradient).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let d = x.dim(candle_core::D::Minus1)?;
    let mut out = with_f32_slice(&x, |v| Ok(v.to_vec()))?;
    for row in out.chunks_exact_mut(d.max(1)) {
        softmax_row(row);
    }
    Tensor::from_vec(out, x.shape(), x.device())
}

/// GELU with the exact (erf) form, `x · (1 + erf(x / √2)) / 2` (inference only).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let mut out = with_f32_slice(&x, |v| Ok(v.to_vec()))?;
    let mut chunks = out.chunks_exact_mut(4);
    for c in &mut chunks {
        // SAFETY: `c` has 4 elements; unaligned v128 loads/stores are allowed.
        unsafe {
            let p = c.as_mut_ptr() as *mut v128;
            let v = v128_load(p);
            let e = erf4(f32x4_mul(v, f32x4_splat(std::f32::consts::FRAC_1_SQRT_2)));
            // The same order of operations as candle's: (erf + 1) · 0.5 · x.
            v128_store(p, f32x4_mul(f32x4_mul(f32x4_add(e, f32x4_splat(1.0)), f32x4_splat(0.5)), v));
        }
    }
    for v in chunks.into_remainder() {
        // SAFETY: a splat in, lane 0 out.
        let e = unsafe { f32x4_extract_lane::<0>(erf4(f32x4_splat(*v * std::f32::consts::FRAC_1_SQRT_2))) };
        *v *= (e + 1.0) * 0.5;
    }
    Tensor::from_vec(out, x.shape(), x.device())
}

fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    let mut chunks = row.chunks_exact_mut(4);
    // SAFETY: (this block and the next) 4-element chunks or splats; unaligned v128 loads/stores are allowed.
    unsafe {
        let m = f32x4_splat(max);
        let mut acc = f32x4_splat(0.0);
        for c in &mut chunks {
            let p = c.as_mut_ptr() as *mut v128;
            let e = exp4(f32x4_sub(v128_load(p), m));
            v128_store(p, e);
            acc = f32x4_add(acc, e);
        }
        sum += f32x4_extract_lane::<0>(acc)
            + f32x4_extract_lane::<1>(acc)
            + f32x4_extract_lane::<2>(acc)
            + f32x4_extract_lane::<3>(acc);
        for v in chunks.into_remainder() {
            *v = f32x4_extract_lane::<0>(exp4(f32x4_splat(*v - max)));
            sum += *v;
        }
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// e^x (Cephes `expf`: x = n·ln 2 + r, |r| ≤ ln 2 / 2, e^r by a degree-6 polynomial, ~1 ulp).
/// Inputs below about -87.3 give 0 (the attention mask's very negative scores among them).
#[inline(always)]
unsafe fn exp4(x: v128) -> v128 {
    let x = f32x4_min(f32x4_max(x, f32x4_splat(-88.0)), f32x4_splat(88.0));
    let n = f32x4_nearest(f32x4_mul(x, f32x4_splat(std::f32::consts::LOG2_E)));
    // ln 2 in two parts, so n · ln 2 is subtracted without rounding error.
    let r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(0.693_359_4)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(-2.121_944_4e-4)));
    let mut p = f32x4_splat(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    let y = f32x4_add(f32x4_add(f32x4_mul(p, f32x4_mul(r, r)), r), f32x4_splat(1.0));
    // 2^n from the exponent bits; n = -127 (x near -88) gives 0.
    let pow2n = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(y, pow2n)
}

/// erf(x) as a rational function of x (the odd/even polynomials Eigen and XLA use for f32,
/// a few ulp); |x| ≥ 4 is ±1 in f32.
#[inline(always)]
unsafe fn erf4(x: v128) -> v128 {
    let x = f32x4_min(f32x4_max(x, f32x4_splat(-4.0)), f32x4_splat(4.0));
    let x2 = f32x4_mul(x, x);
    let mut p = f32x4_splat(-2.726_142_3e-10);
    for c in [2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_6e-3, -1.609_603_3e-2] {
        p = f32x4_add(f32x4_mul(p, x2), f32x4_splat(c));
    }
    let p = f32x4_mul(p, x);
    let mut q = f32x4_splat(-1.456_607_2e-5);
    for c in [-2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_473_9e-2] {
        q = f32x4_add(f32x4_mul(q, x2), f32x4_splat(c));
    }
    f32x4_div(p, q)
}
