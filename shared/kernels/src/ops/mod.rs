//! Element-wise ops of the inference forward, in the target's form: simd128 in the browser
//! ([`wasm`]), vectorized and threaded natively ([`native`]), candle's elsewhere.

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm;

use candle_core::{Result, Tensor};

/// Softmax over the last dimension, for inference: simd128 in the browser (`wasm`, where
/// candle's calls libm per value), vectorized and threaded natively (`native`), candle's
/// on wasm without simd128.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::softmax_last_dim(x);
    #[cfg(not(target_arch = "wasm32"))]
    return native::softmax_last_dim(x);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    candle_nn::ops::softmax_last_dim(x)
}

/// Exact (erf) GELU, for inference: simd128 in the browser (`wasm`), vectorized and threaded
/// natively (`native`), candle's on wasm without simd128.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::gelu_erf(x);
    #[cfg(not(target_arch = "wasm32"))]
    return native::gelu_erf(x);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    x.gelu_erf()
}

/// LayerNorm of `a + b` (a residual connection and the norm after it) in one pass, where this
/// target has the fused kernel (natively); `None` elsewhere, for the caller's two steps.
pub fn add_layer_norm(a: &Tensor, b: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Option<Result<Tensor>> {
    #[cfg(not(target_arch = "wasm32"))]
    return Some(native::add_layer_norm(a, b, weight, bias, eps));
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (a, b, weight, bias, eps);
        None
    }
}
