//! Hadamard rotation of quantized Linear layers.
//!
//! A Linear computes `y = x·Wᵀ`. With `H` an orthonormal, symmetric block-diagonal Hadamard
//! matrix (`H·H = I`), `y = (x·H)·(W·H)ᵀ` as well. The bundle stores `W·H` quantized and the
//! model rotates each input `x` before the product. Why: quantization error in a block of values
//! grows with the block's largest value, and encoder activations (the GELU outputs feeding the
//! FFN's output projection above all) have a few channels far larger than the rest. The rotation
//! spreads every such value evenly over its block, so both the weights' blocks and the
//! activations' blocks (which candle's kernels quantize to 8 bits on the fly) lose far less.
//! The idea is QuaRot's and QuIP#'s; here it needs no calibration data and costs
//! `k·log2(block)` additions per input row, next to the product's `k·n` multiply-adds.

use candle_core::{Result, Tensor};

/// The largest rotation block: 256 covers a q4k super-block and candle's q8K activation block.
pub const MAX_BLOCK: usize = 256;

/// The Hadamard block for rows of `k` values: the largest power of two that divides `k`, at most
/// `MAX_BLOCK`. None when that is below 32 (too small a block to spread anything over).
pub fn block_for(k: usize) -> Option<usize> {
    let block = (1usize << k.trailing_zeros()).min(MAX_BLOCK);
    (block >= 32).then_some(block)
}

/// Multiplies every row (the last dimension) by the block-diagonal Hadamard matrix with blocks of
/// `block` values. Applying it twice gives the input back (up to rounding).
pub fn rotate_rows(x: &Tensor, block: usize) -> Result<Tensor> {
    let k = x.dim(candle_core::D::Minus1)?;
    if !k.is_multiple_of(block) || !block.is_power_of_two() {
        candle_core::bail!("cannot rotate rows of {k} values in Hadamard blocks of {block}");
    }
    let mut values = x.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    for chunk in values.chunks_exact_mut(block) {
        hadamard_in_place(chunk);
    }
    Tensor::from_vec(values, x.shape(), x.device())
}

/// The fast Walsh–Hadamard transform of `v` (length a power of two, at least 8), scaled to be
/// orthonormal. Vectorized where the CPU allows (AVX2, or simd128 in the browser): the
/// portable form's first three stages pair values 1, 2 and 4 apart, which the compiler leaves
/// scalar, and a forward rotates the input of every q8_0 product (6 % of one at 1 × 128). All
/// forms add in the same order, so they give the same bits.
pub fn hadamard_in_place(v: &mut [f32]) {
    // The vector forms read whole vectors at offsets computed from the length.
    assert!(v.len().is_power_of_two() && v.len() >= 8, "a Hadamard block of {} values", v.len());
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { x86::hadamard_in_place(v) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::hadamard_in_place(v);
    #[allow(unreachable_code)]
    hadamard_portable(v)
}

/// `hadamard_in_place` without explicit vectors: the first three stages run unrolled on groups
/// of 8 (as loops they would be loops of 1, 2 and 4 iterations); the later stages are loops the
/// compiler vectorizes.
pub fn hadamard_portable(v: &mut [f32]) {
    for g in v.chunks_exact_mut(8) {
        let [a0, a1, a2, a3, a4, a5, a6, a7] = [g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]];
        let (b0, b1, b2, b3) = (a0 + a1, a0 - a1, a2 + a3, a2 - a3);
        let (b4, b5, b6, b7) = (a4 + a5, a4 - a5, a6 + a7, a6 - a7);
        let (c0, c1, c2, c3) = (b0 + b2, b1 + b3, b0 - b2, b1 - b3);
        let (c4, c5, c6, c7) = (b4 + b6, b5 + b7, b4 - b6, b5 - b7);
        g.copy_from_slice(&[c0 + c4, c1 + c5, c2 + c6, c3 + c7, c0 - c4, c1 - c5, c2 - c6, c3 - c7]);
    }
    later_stages(v, 8);
}

/// The stages pairing values `from` or more apart, then the orthonormal scale: plain loops
/// over whole vectors, which the compiler vectorizes at the width the caller was built for.
#[inline(always)]
fn later_stages(v: &mut [f32], from: usize) {
    let n = v.len();
    let mut half = from;
    while half < n {
        for pair in v.chunks_exact_mut(2 * half) {
            let (lo, hi) = pair.split_at_mut(half);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let (x, y) = (*a, *b);
                *a = x + y;
                *b = x - y;
            }
        }
        half *= 2;
    }
    let scale = 1.0 / (n as f32).sqrt();
    for x in v.iter_mut() {
        *x *= scale;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Stages 1, 2 and 4 inside each 8-lane vector: every lane's partner comes in by a
    /// permutation, and a blend keeps the sum in the lower lane of each pair, the difference
    /// (`partner − lane`, the lower minus the upper value) in the upper.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn hadamard_in_place(v: &mut [f32]) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::RotationAvx2);
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            for g in v.chunks_exact_mut(8) {
                let mut x = _mm256_loadu_ps(g.as_ptr());
                let partner = _mm256_permute_ps::<0b10_11_00_01>(x);
                x = _mm256_blend_ps::<0b1010_1010>(_mm256_add_ps(x, partner), _mm256_sub_ps(partner, x));
                let partner = _mm256_permute_ps::<0b01_00_11_10>(x);
                x = _mm256_blend_ps::<0b1100_1100>(_mm256_add_ps(x, partner), _mm256_sub_ps(partner, x));
                let partner = _mm256_permute2f128_ps::<1>(x, x);
                x = _mm256_blend_ps::<0b1111_0000>(_mm256_add_ps(x, partner), _mm256_sub_ps(partner, x));
                _mm256_storeu_ps(g.as_mut_ptr(), x);
            }
            // The later stages as explicit vector loops: as plain loops (`later_stages`) the
            // compiler's vector loop spends more on its trip-count checks than on the sums when a
            // stage's runs are one or two vectors long.
            let (n, p) = (v.len(), v.as_mut_ptr());
            let scale = _mm256_set1_ps(1.0 / (n as f32).sqrt());
            let mut half = 8;
            while half < n {
                let last = 2 * half == n;
                for start in (0..n).step_by(2 * half) {
                    for i in (start..start + half).step_by(8) {
                        let (a, b) = (_mm256_loadu_ps(p.add(i)), _mm256_loadu_ps(p.add(i + half)));
                        let (mut sum, mut difference) = (_mm256_add_ps(a, b), _mm256_sub_ps(a, b));
                        if last {
                            (sum, difference) = (_mm256_mul_ps(sum, scale), _mm256_mul_ps(difference, scale));
                        }
                        _mm256_storeu_ps(p.add(i), sum);
                        _mm256_storeu_ps(p.add(i + half), difference);
                    }
                }
                half *= 2;
            }
            if n == 8 {
                _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), scale));
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use std::arch::wasm32::*;

    /// As the x86 form, on 4-lane vectors: stages 1 and 2 inside each vector, the rest whole.
    pub(crate) fn hadamard_in_place(v: &mut [f32]) {
        for g in v.chunks_exact_mut(4) {
            // SAFETY: `g` holds 4 floats; v128 loads and stores need no alignment.
            let mut x = unsafe { v128_load(g.as_ptr().cast()) };
            let partner = i32x4_shuffle::<1, 0, 3, 2>(x, x);
            x = i32x4_shuffle::<0, 5, 2, 7>(f32x4_add(x, partner), f32x4_sub(partner, x));
            let partner = i32x4_shuffle::<2, 3, 0, 1>(x, x);
            x = i32x4_shuffle::<0, 1, 6, 7>(f32x4_add(x, partner), f32x4_sub(partner, x));
            // SAFETY: as the load.
            unsafe { v128_store(g.as_mut_ptr().cast(), x) };
        }
        super::later_stages(v, 4);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::Device;

    /// The transform against the Hadamard matrix written out by Sylvester's construction.
    #[test]
    fn matches_the_explicit_matrix_and_undoes_itself() {
        for n in [8, 32, 256] {
            matches_the_explicit_matrix(n);
        }
    }

    fn matches_the_explicit_matrix(n: usize) {
        // Sylvester: H[i][j] = (-1)^popcount(i & j) / sqrt(n).
        let h: Vec<f32> = (0..n * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                if (i & j).count_ones() % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .map(|s| s / (n as f32).sqrt())
            .collect();
        let x: Vec<f32> = (0..2 * n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3).collect();
        let xt = Tensor::from_vec(x.clone(), (2, n), &Device::Cpu).unwrap();
        let rotated = rotate_rows(&xt, n).unwrap();
        let ht = Tensor::from_vec(h, (n, n), &Device::Cpu).unwrap();
        let explicit = xt.matmul(&ht).unwrap();
        let diff = (rotated.clone() - explicit).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "fast transform differs from x·H by {diff}");
        let back = rotate_rows(&rotated, n).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = back.iter().zip(&x).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "H·H is not the identity: {worst}");
    }

    /// Whatever form this CPU runs gives the portable form's bits.
    #[test]
    pub(crate) fn every_form_gives_the_same_bits() {
        let x: Vec<f32> =
            (0..1024u32).map(|i| (i.wrapping_mul(2654435761) >> 8) as f32 / (1 << 24) as f32 - 0.5).collect();
        for n in [8, 16, 32, 64, 128, 256] {
            let (mut fast, mut portable) = (x.clone(), x.clone());
            fast.chunks_exact_mut(n).for_each(hadamard_in_place);
            portable.chunks_exact_mut(n).for_each(hadamard_portable);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&portable), "blocks of {n}");
        }
    }

    #[test]
    fn block_sizes() {
        assert_eq!(block_for(384), Some(128));
        assert_eq!(block_for(768), Some(256));
        assert_eq!(block_for(3072), Some(256));
        assert_eq!(block_for(1536), Some(256));
        assert_eq!(block_for(40), None);
        assert!(rotate_rows(&Tensor::zeros((1, 48), candle_core::DType::F32, &Device::Cpu).unwrap(), 32).is_err());
    }
}
