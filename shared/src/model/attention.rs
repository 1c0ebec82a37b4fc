//! Scaled dot-product attention for inference, its (batch, head) pairs split over rayon's
//! threads. candle's batched product runs one small GEMM per pair, one after another on the
//! calling thread (at batch 32 × 128 tokens, 384 pairs of 128 × 128 × 64 products per layer
//! and direction): a profile showed the other thread idle through them.
//!
//! Each pair's numbers are the ones the batched ops give (the same GEMM per pair, the same
//! element-wise ops), so the result does not depend on how the pairs are split.

use candle_core::{Result, Tensor};

/// Multiply-adds of one direction below which the pairs stay on the calling thread.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MACS: usize = 1 << 22;

/// `softmax(q·kᵀ · scale + mask) · v` for `q` `[b, heads, t_q, hd]`, `k` and `v`
/// `[b, heads, t, hd]` and the additive `mask` `[b, 1, 1, t]`: `[b, heads, t_q, hd]`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, heads, t_q, hd) = q.dims4()?;
    let t = k.dim(2)?;
    let pairs = b * heads;
    let q = q.reshape((pairs, t_q, hd))?;
    let k = k.reshape((pairs, t, hd))?;
    let v = v.reshape((pairs, t, hd))?;
    let mask = mask.broadcast_as((b, heads, 1, t))?.reshape((pairs, 1, t))?;
    let part = |start: usize, len: usize| -> Result<Tensor> {
        let k = k.narrow(0, start, len)?;
        let scores =
            (q.narrow(0, start, len)?.matmul(&k.t()?)? * scale)?.broadcast_add(&mask.narrow(0, start, len)?)?;
        super::layers::softmax_last_dim(&scores)?.matmul(&v.narrow(0, start, len)?)
    };
    #[cfg(target_arch = "wasm32")]
    let ctx = part(0, pairs)?;
    // A tweet's attention (12 pairs of 16 × 16 × 64 at 16 tokens) is over before a split pays.
    #[cfg(not(target_arch = "wasm32"))]
    let ctx = if pairs * t_q * t * hd < PARALLEL_MACS {
        part(0, pairs)?
    } else {
        use rayon::prelude::*;
        // A few parts per thread, so that one slowed by other work does not hold up the rest.
        let len = pairs.div_ceil(rayon::current_num_threads() * 2).max(1);
        let starts: Vec<usize> = (0..pairs).step_by(len).collect();
        let parts = starts.into_par_iter().map(|start| part(start, len.min(pairs - start)));
        Tensor::cat(&parts.collect::<Result<Vec<_>>>()?, 0)?
    };
    ctx.reshape((b, heads, t_q, hd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Split over threads (the last two shapes) or not, the same bits as candle's batched ops
    /// on the whole, with a padded (masked) tail and pair counts that do not divide evenly.
    #[test]
    fn parts_give_the_batched_ops_bits() {
        let dev = Device::Cpu;
        let values = |len: usize, seed: u64| -> Vec<f32> {
            let mut s = seed;
            (0..len)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        };
        for (b, heads, t_q, t, hd) in [(1, 12, 16, 16, 64), (3, 5, 1, 9, 8), (4, 12, 64, 64, 64), (5, 7, 48, 48, 64)] {
            let tensor = |seed, t| Tensor::from_vec(values(b * heads * t * hd, seed), (b, heads, t, hd), &dev).unwrap();
            let (q, k, v) = (tensor(1, t_q), tensor(2, t), tensor(3, t));
            // The last sequence's final two tokens are padding.
            let mask: Vec<f32> = (0..b * t)
                .map(|i| if i / t == b - 1 && i % t >= t.saturating_sub(2) { f32::MIN } else { 0.0 })
                .collect();
            let mask = Tensor::from_vec(mask, (b, 1, 1, t), &dev).unwrap();
            let scale = 1.0 / (hd as f64).sqrt();
            let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap().broadcast_add(&mask).unwrap();
            let want = super::super::layers::softmax_last_dim(&scores).unwrap().matmul(&v).unwrap();
            let got = attention(&q, &k, &v, &mask, scale).unwrap();
            let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got.dims(), want.dims());
            assert_eq!(bits(&got), bits(&want), "b={b} heads={heads} t_q={t_q} t={t} hd={hd}");
        }
    }
}
