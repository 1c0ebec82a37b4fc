//! Reading and writing candle tensors' values in place, for the kernels that replace candle's
//! ops.

use candle_core::{Result, Tensor};
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
use std::mem::MaybeUninit;

/// `x · Wᵀ + bias` through one of the packed kernels for a weight `[n, k]`: checks `x`
/// (`[.., k]`, f32) and `bias` (`[n]`, f32), then `product(rows, x, bias, out)` must write
/// every value of the `rows × n` output. The output is not zeroed first: at batch 32 that
/// memset was 2 % of a forward, on one thread while the others waited.
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
pub(crate) fn packed_product(
    x: &Tensor,
    bias: &Tensor,
    (n, k): (usize, usize),
    product: impl FnOnce(usize, &[f32], &[f32], &mut [MaybeUninit<f32>]),
) -> Result<Tensor> {
    let features = x.dim(candle_core::D::Minus1)?;
    if features != k {
        candle_core::bail!("matmul: input has {features} features, the weight {k}");
    }
    let rows = x.elem_count() / k.max(1);
    let x = x.contiguous()?;
    let bias = bias.contiguous()?;
    let mut out = Vec::with_capacity(rows * n);
    with_f32_slice(&x, |xs| {
        with_f32_slice(&bias, |bs| {
            if bs.len() != n {
                candle_core::bail!("bias has {} values for {n} outputs", bs.len());
            }
            product(rows, xs, bs, &mut out.spare_capacity_mut()[..rows * n]);
            // SAFETY: `product` wrote all `rows · n` values (its contract, above).
            unsafe { out.set_len(rows * n) };
            Ok(())
        })
    })?;
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank >= 1") = n;
    Tensor::from_vec(out, dims, x.device())
}

/// `out` set to zeros, for the kernels that take an initialized output (the wasm ones, where
/// the memset is small next to a product on one thread).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) fn zeroed(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    for v in out.iter_mut() {
        v.write(0.0);
    }
    // SAFETY: every value was just written.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Runs `f` on a contiguous f32 CPU tensor's values in place, without a copy.
pub fn with_f32_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else { candle_core::bail!("the kernel needs a CPU tensor") };
    let all = cpu.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the kernel needs a contiguous tensor")
    };
    f(&all[start..end])
}
