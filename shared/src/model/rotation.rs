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
/// orthonormal. The first three stages run unrolled on groups of 8 (as loops they would be
/// loops of 1, 2 and 4 iterations); the later stages are loops the compiler vectorizes.
pub(crate) fn hadamard_in_place(v: &mut [f32]) {
    let n = v.len();
    for g in v.chunks_exact_mut(8) {
        let [a0, a1, a2, a3, a4, a5, a6, a7] = [g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]];
        let (b0, b1, b2, b3) = (a0 + a1, a0 - a1, a2 + a3, a2 - a3);
        let (b4, b5, b6, b7) = (a4 + a5, a4 - a5, a6 + a7, a6 - a7);
        let (c0, c1, c2, c3) = (b0 + b2, b1 + b3, b0 - b2, b1 - b3);
        let (c4, c5, c6, c7) = (b4 + b6, b5 + b7, b4 - b6, b5 - b7);
        g.copy_from_slice(&[c0 + c4, c1 + c5, c2 + c6, c3 + c7, c0 - c4, c1 - c5, c2 - c6, c3 - c7]);
    }
    let mut half = 8;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The transform against the Hadamard matrix written out by Sylvester's construction.
    #[test]
    fn matches_the_explicit_matrix_and_undoes_itself() {
        let n: usize = 32;
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
