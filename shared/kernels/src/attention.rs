//! Scaled dot-product attention for inference, read straight from the projections' layout.
//!
//! Natively each (sequence, head) pair is one task on rayon's threads: two small GEMMs (the
//! `gemm` crate candle's products use, with strides that pick the head's columns out of
//! `[b, t, heads · hd]`) around a fused scale, mask and softmax, the context written into the
//! head's columns of the output. candle's batched ops needed the heads split into
//! `[b, heads, t, hd]` copies first and the context merged back after (`memmove`, 4-6 % of a
//! forward's samples, on one thread), and ran one GEMM per pair in turn on the calling thread
//! while the other threads waited (a profile showed them idle through it).
//!
//! Each pair's numbers are the batched ops' (the same GEMM with the same sizes, the same
//! element-wise operations in the same order), so the result does not depend on the layout or
//! on how the pairs are split. The browser keeps the batched ops (`batched`): one thread.

use candle_core::{Result, Tensor};

/// Multiply-adds of one direction below which the pairs stay on the calling thread: a tweet
/// of 16 tokens (12 pairs of 16 × 16 × 64) is over before a split pays.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_MACS: usize = 1 << 18;

/// `softmax(q·kᵀ · scale + mask) · v` per head, for `q` `[b, t_q, heads · hd]`, `k` and `v`
/// `[b, t, heads · hd]` (the projections' outputs) and the additive `mask` `[b, 1, 1, t]`:
/// the context, `[b, t_q, heads · hd]`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    #[cfg(target_arch = "wasm32")]
    return batched(q, k, v, mask, heads, scale);
    #[cfg(not(target_arch = "wasm32"))]
    return per_pair(q, k, v, mask, heads, scale);
}

/// The same with candle's batched ops on heads split into `[b, heads, t, hd]`.
pub fn batched(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let (b, t_q, h) = q.dims3()?;
    let (q, k, v) = (split_heads(q, heads)?, split_heads(k, heads)?, split_heads(v, heads)?);
    let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
    crate::ops::softmax_last_dim(&scores)?.matmul(&v)?.transpose(1, 2)?.reshape((b, t_q, h))
}

/// `[b, t, heads · hd]` → `[b, heads, t, hd]`, contiguous.
pub fn split_heads(y: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, h) = y.dims3()?;
    y.reshape((b, t, heads, h / heads))?.transpose(1, 2)?.contiguous()
}

#[cfg(not(target_arch = "wasm32"))]
fn per_pair(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    use crate::tensor::with_f32_slice;
    use rayon::prelude::*;

    let (b, t_q, h) = q.dims3()?;
    let t = k.dim(1)?;
    if heads == 0 || h % heads != 0 || k.dims3()? != (b, t, h) || v.dims3()? != (b, t, h) || mask.elem_count() != b * t
    {
        candle_core::bail!(
            "attention: q {:?}, k {:?}, v {:?}, mask {:?} with {heads} heads",
            q.dims(),
            k.dims(),
            v.dims(),
            mask.dims()
        );
    }
    let hd = h / heads;
    // What candle's `Tensor * f64` multiplies by.
    let scale = scale as f32;
    let (q, k, v, mask) = (q.contiguous()?, k.contiguous()?, v.contiguous()?, mask.contiguous()?);
    let mut out: Vec<f32> = Vec::with_capacity(b * t_q * h);
    let dst = OutPtr(out.spare_capacity_mut().as_mut_ptr().cast());
    with_f32_slice(&q, |qs| {
        with_f32_slice(&k, |ks| {
            with_f32_slice(&v, |vs| {
                with_f32_slice(&mask, |ms| {
                    let pair = |scores: &mut Vec<f32>, p: usize| {
                        let (s, head) = (p / heads, p % heads);
                        let q = qs[s * t_q * h + head * hd..].as_ptr();
                        let (k, v) = (ks[s * t * h + head * hd..].as_ptr(), vs[s * t * h + head * hd..].as_ptr());
                        scores.resize(t_q * t, 0.0);
                        // SAFETY: the operands' strides stay inside sequence `s`'s rows of q,
                        // k and v (head `head`'s hd columns of each), and within `scores`.
                        unsafe { gemm_f32((t_q, t, hd), scores.as_mut_ptr(), t, (q, 1, h), (k, h, 1)) };
                        let mask = &ms[s * t..][..t];
                        for row in scores.chunks_exact_mut(t) {
                            for (x, &m) in row.iter_mut().zip(mask) {
                                *x = *x * scale + m;
                            }
                            crate::ops::native::softmax_in_place(row);
                        }
                        // SAFETY: as above for `v`; the context goes to sequence `s`'s rows,
                        // head `head`'s columns of the output, which no other pair writes.
                        unsafe {
                            let ctx = dst.at(s * t_q * h + head * hd);
                            gemm_f32((t_q, hd, t), ctx, h, (scores.as_ptr(), 1, t), (v, 1, h));
                        }
                    };
                    let pairs = b * heads;
                    if pairs * t_q * t * hd < PARALLEL_MACS {
                        let mut scores = Vec::new();
                        (0..pairs).for_each(|p| pair(&mut scores, p));
                    } else {
                        (0..pairs).into_par_iter().for_each_init(Vec::new, pair);
                    }
                    Ok(())
                })
            })
        })
    })?;
    // SAFETY: every pair wrote its t_q × hd block, and the blocks tile the output.
    unsafe { out.set_len(b * t_q * h) };
    Tensor::from_vec(out, (b, t_q, h), q.device())
}

/// The output, written by the pairs on rayon's threads, each to its own block.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the pairs write disjoint blocks (see `per_pair`).
#[cfg(not(target_arch = "wasm32"))]
unsafe impl Sync for OutPtr {}
// SAFETY: as for `Sync`: a plain pointer into an output the pairs write in disjoint blocks.
#[cfg(not(target_arch = "wasm32"))]
unsafe impl Send for OutPtr {}

#[cfg(not(target_arch = "wasm32"))]
impl OutPtr {
    /// The `i`th value (a method, so that closures capture the `Sync` wrapper, not its field).
    ///
    /// # Safety
    /// `i` must be within the allocation.
    unsafe fn at(self, i: usize) -> *mut f32 {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe { self.0.add(i) }
    }
}

/// `dst (m × n, row stride dst_rs) = lhs (m × k) · rhs (k × n)`, each operand given as
/// (pointer, column stride, row stride), on this thread: the call candle's CPU matmul makes,
/// so the same kernels in the same order.
///
/// # Safety
/// Every element the sizes and strides address must be inside its allocation.
#[cfg(not(target_arch = "wasm32"))]
unsafe fn gemm_f32(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    (lhs, lhs_cs, lhs_rs): (*const f32, usize, usize),
    (rhs, rhs_cs, rhs_rs): (*const f32, usize, usize),
) {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::test_inputs::values;
    use candle_core::Device;

    /// Split over threads (the last two shapes) or not, the same bits as candle's batched ops
    /// on split heads, with a padded (masked) tail, one query token (the last layer's), and
    /// pair counts that do not divide evenly.
    #[test]
    fn per_pair_gives_the_batched_ops_bits() {
        let dev = Device::Cpu;
        for (b, heads, t_q, t, hd) in
            [(1, 12, 16, 16, 64), (3, 5, 1, 9, 8), (2, 12, 1, 70, 64), (4, 12, 64, 64, 64), (5, 7, 48, 48, 64)]
        {
            let tensor =
                |seed, t| Tensor::from_vec(values(b * t * heads * hd, seed), (b, t, heads * hd), &dev).unwrap();
            let (q, k, v) = (tensor(1, t_q), tensor(2, t), tensor(3, t));
            // The last sequence's final two tokens are padding.
            let mask: Vec<f32> = (0..b * t)
                .map(|i| if i / t == b - 1 && i % t >= t.saturating_sub(2) { f32::MIN } else { 0.0 })
                .collect();
            let mask = Tensor::from_vec(mask, (b, 1, 1, t), &dev).unwrap();
            let scale = 1.0 / (hd as f64).sqrt();
            // The batched ops by hand, as the training path runs them.
            let split = |y: &Tensor| split_heads(y, heads).unwrap();
            let scores = (split(&q).matmul(&split(&k).t().unwrap()).unwrap() * scale).unwrap();
            let probs = crate::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap();
            let want =
                probs.matmul(&split(&v)).unwrap().transpose(1, 2).unwrap().reshape((b, t_q, heads * hd)).unwrap();
            let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (name, got) in [
                ("per pair", per_pair(&q, &k, &v, &mask, heads, scale).unwrap()),
                ("batched", batched(&q, &k, &v, &mask, heads, scale).unwrap()),
            ] {
                assert_eq!(got.dims(), want.dims());
                assert_eq!(bits(&got), bits(&want), "{name}: b={b} heads={heads} t_q={t_q} t={t} hd={hd}");
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_an_error() {
        let dev = Device::Cpu;
        let zeros = |dims: &[usize]| Tensor::zeros(dims, candle_core::DType::F32, &dev).unwrap();
        let (q, kv, mask) = (zeros(&[1, 4, 12]), zeros(&[1, 5, 12]), zeros(&[1, 1, 1, 5]));
        assert!(per_pair(&q, &kv, &kv, &mask, 5, 1.0).is_err(), "12 features in 5 heads");
        assert!(per_pair(&q, &kv, &zeros(&[1, 6, 12]), &mask, 3, 1.0).is_err(), "v longer than k");
        assert!(per_pair(&q, &kv, &kv, &zeros(&[1, 1, 1, 4]), 3, 1.0).is_err(), "mask shorter than k");
        assert!(per_pair(&q, &kv, &kv, &mask, 3, 1.0).is_ok());
    }
}
