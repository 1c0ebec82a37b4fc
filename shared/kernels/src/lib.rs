//! The kernels of the quantized model, apart from the model: [`PackedMatrix`] (a quantized
//! weight repacked for this target's product; the one place that chooses between x86 and wasm
//! forms), element-wise [`ops`], [`attention`]'s products and the Hadamard [`rotation`]. Each
//! target's forms live in their own folder ([`x86`]: Q8_0 in AVX2, AVX-VNNI, AVX-512 VNNI and
//! AMX tiles, Q4K; `wasm`: simd128 and Relaxed SIMD for Q8_0 and Q4K).
//!
//! Nothing here reads the environment or asks the OS for anything on its own: the programs
//! opt in ([`enable_amx`], [`threads::spin_workers_in_forwards`]). This crate never imports the
//! model.

pub mod attention;
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
mod blocks;
pub mod ops;
mod packed;
pub mod rotation;
mod tensor;
pub mod test_inputs;
#[cfg(any(test, feature = "tested-forms"))]
pub mod tested_forms;
pub mod threads;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm;
#[cfg(target_arch = "x86_64")]
pub mod x86;

pub use packed::{candle_product, PackedMatrix};
pub use tensor::with_f32_slice;

/// Lets the Q8_0 product use Intel AMX tiles where the CPU has them: asks Linux for the tiles'
/// state (`arch_prctl`), once per process. Returns whether the AMX form will run. A program
/// calls it at start unless told not to (the trainer: `SENTIMENT_AMX=0`); without it the
/// AVX-512 and AVX2 forms run.
pub fn enable_amx() -> bool {
    #[cfg(target_arch = "x86_64")]
    return x86::amx::enable();
    #[cfg(not(target_arch = "x86_64"))]
    false
}
