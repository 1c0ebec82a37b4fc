//! [`PackedMatrix`]: a quantized weight repacked at load for this target's product, the one place
//! that chooses between the x86 forms (`x86`: AVX2, AVX-VNNI, AVX-512 VNNI, AMX) and the
//! browser's (`wasm`: simd128, Relaxed SIMD). Elsewhere there is none, and candle's product
//! ([`candle_product`]) runs.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use crate::wasm::{q4k::PackedQ4K, q8_0::PackedQ8};
#[cfg(target_arch = "x86_64")]
use crate::x86::{q4k::PackedQ4K, q8_0::PackedQ8};

/// A Q8_0 or Q4K weight `[n, k]` in this target's kernel layout; the `QTensor` it came from can
/// be dropped, so the weights are held once.
pub enum PackedMatrix {
    #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
    Q8_0(PackedQ8),
    #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
    Q4K(PackedQ4K),
}

impl PackedMatrix {
    /// `Some` when this target has a kernel for `weight`'s format and shape.
    pub fn from_qtensor(weight: &QTensor) -> Result<Option<Self>> {
        #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
        {
            if let Some(w) = PackedQ8::from_qtensor(weight)? {
                return Ok(Some(PackedMatrix::Q8_0(w)));
            }
            if let Some(w) = PackedQ4K::from_qtensor(weight)? {
                return Ok(Some(PackedMatrix::Q4K(w)));
            }
        }
        let _ = weight;
        Ok(None)
    }

    /// `x · Wᵀ + bias` for `x` `[.., k]` and `bias` `[n]` (f32). With `rotation`, each input row
    /// is first rotated as `rotation::rotate_rows` does (the weight was stored rotated).
    pub fn forward(&self, x: &Tensor, bias: &Tensor, rotation: Option<usize>) -> Result<Tensor> {
        match self {
            // Rotates each input row on the kernel's threads, as it quantizes it.
            #[cfg(target_arch = "x86_64")]
            PackedMatrix::Q8_0(w) => w.forward(x, bias, rotation),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            PackedMatrix::Q8_0(w) => w.forward(&rotated(x, rotation)?, bias),
            #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
            PackedMatrix::Q4K(w) => w.forward(&rotated(x, rotation)?, bias),
            #[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
            _ => unreachable!("no packed matrices on this target ({x:?}, {bias:?}, {rotation:?})"),
        }
    }

    /// The products of one input `x` with several matrices (`(weight, bias)` pairs, all stored
    /// with `rotation`), preparing `x` once (rotated, quantized) where the kernels can share it
    /// (x86: all of one format with `shares_input`); `None` otherwise, for one `forward` each.
    pub fn forward_same_input(
        products: &[(&PackedMatrix, &Tensor)],
        x: &Tensor,
        rotation: Option<usize>,
    ) -> Result<Option<Vec<Tensor>>> {
        #[cfg(target_arch = "x86_64")]
        {
            let q8: Option<Vec<_>> = products
                .iter()
                .map(|&(w, b)| match w {
                    PackedMatrix::Q8_0(w) => Some((w, b)),
                    _ => None,
                })
                .collect();
            if let Some(q8) = q8.filter(|q| shares(q, PackedQ8::shares_input)) {
                return PackedQ8::forward_many(&q8, x, rotation).map(Some);
            }
            let q4k: Option<Vec<_>> = products
                .iter()
                .map(|&(w, b)| match w {
                    PackedMatrix::Q4K(w) => Some((w, b)),
                    _ => None,
                })
                .collect();
            if let Some(q4k) = q4k.filter(|q| shares(q, PackedQ4K::shares_input)) {
                return PackedQ4K::forward_many(&q4k, &rotated(x, rotation)?).map(Some);
            }
        }
        let _ = (products, x, rotation);
        Ok(None)
    }
}

/// True when every matrix can read the first one's prepared input.
#[cfg(target_arch = "x86_64")]
fn shares<W>(products: &[(&W, &Tensor)], shares_input: impl Fn(&W, &W) -> bool) -> bool {
    products.first().is_some_and(|&(first, _)| products.iter().all(|&(w, _)| shares_input(first, w)))
}

/// The input as the stored weight expects it: rotated when the weight was.
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
fn rotated(x: &Tensor, rotation: Option<usize>) -> Result<Tensor> {
    match rotation {
        Some(block) => crate::rotation::rotate_rows(x, block),
        None => Ok(x.clone()),
    }
}

/// Rows per product for Q4K weights on x86_64. From 32 rows up, candle switches to an AMX
/// kernel (where the CPU has AMX) that builds a second, AMX-tiled copy of the whole matrix and
/// keeps it next to the first: a roberta-base q4k bundle then needs ~4x its size in memory.
/// Below 32 rows every product uses the one packed copy, whatever the batch.
const Q4K_ROWS_PER_PRODUCT: usize = 31;

/// candle's own quantized product (for the formats and targets [`PackedMatrix`] has no kernel
/// for), in row slices where candle's x86 Q4K path would keep a second copy of the weights.
pub fn candle_product(matmul: &QMatMul, x: &Tensor) -> Result<Tensor> {
    let q4k_on_x86 = cfg!(target_arch = "x86_64")
        && matches!(matmul, QMatMul::QTensor(q) if q.dtype() == candle_core::quantized::GgmlDType::Q4K);
    let k = x.dim(candle_core::D::Minus1)?;
    let rows = x.elem_count() / k.max(1);
    if !q4k_on_x86 || rows <= Q4K_ROWS_PER_PRODUCT {
        return matmul.forward(x);
    }
    let flat = x.reshape((rows, k))?;
    let parts = (0..rows)
        .step_by(Q4K_ROWS_PER_PRODUCT)
        .map(|start| matmul.forward(&flat.narrow(0, start, Q4K_ROWS_PER_PRODUCT.min(rows - start))?))
        .collect::<Result<Vec<_>>>()?;
    let y = Tensor::cat(&parts, 0)?;
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank >= 1") = y.dim(1)?;
    y.reshape(dims)
}
