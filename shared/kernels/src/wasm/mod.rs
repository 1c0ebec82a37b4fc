//! The browser's kernels: Q8_0 ([`q8_0`]) and Q4K ([`q4k`]), each in simd128 and in Relaxed
//! SIMD's 8-bit dot (the `relaxed-simd` build, where the engine has it): [`Kernel`] is the
//! choice between them, made once per run by probing the engine. Both products run over their
//! tiles the same way (`tiles`).

pub mod q4k;
pub mod q8_0;
mod tiles;

#[cfg(feature = "relaxed-simd")]
use core::arch::wasm32::*;

/// The inner loop of a `PackedQ8` or a `wasm::q4k::PackedQ4K`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `i32x4_dot_i16x8` on values widened to i16: on every engine.
    Simd128,
    /// Relaxed SIMD's 8-bit dot: for Q8_0 on the weights as unsigned bytes (module comment),
    /// for Q4K on its 4-bit values.
    #[cfg(feature = "relaxed-simd")]
    Relaxed,
}

impl Kernel {
    /// Every kernel of this build.
    pub fn all() -> Vec<Self> {
        vec![
            Kernel::Simd128,
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed,
        ]
    }

    /// The kernel for this engine: `Relaxed` where `relaxed_u8_dot_is_exact` — V8 with AVX-VNNI
    /// (and without AVX-VNNI-INT8), where its 8-bit dot is one unsigned × signed instruction.
    /// Elsewhere it is three (x86's SSSE3 lowering) and simd128 is faster (docs/benchmarks.md,
    /// "Relaxed SIMD"), or for Q4K, whose relaxed form would be exact anyway, no slower.
    pub fn best() -> Self {
        #[cfg(feature = "relaxed-simd")]
        if relaxed_u8_dot_is_exact() {
            return Kernel::Relaxed;
        }
        Kernel::Simd128
    }

    /// What the model panel and the benchmarks call it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Simd128 => "simd128",
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed => "relaxed-simd",
        }
    }
}

/// Whether this engine's `i32x4.relaxed_dot_i8x16_i7x16_add_s` takes a second operand of
/// 128..=255 as unsigned and sums without saturating — what `RelaxedU8` needs. Probed
/// once: an engine lowers the instruction one way for the whole run (seen for V8's two tiers:
/// the kernel tests pass with `--liftoff-only` and with `--no-liftoff`).
#[cfg(feature = "relaxed-simd")]
pub fn relaxed_u8_dot_is_exact() -> bool {
    static EXACT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: this build requires Relaxed SIMD (`frontend` loads it only where it validates).
    *EXACT.get_or_init(|| unsafe { probe_u8_dot() })
}

/// # Safety
/// The engine must have Relaxed SIMD.
#[cfg(feature = "relaxed-simd")]
#[target_feature(enable = "relaxed-simd")]
unsafe fn probe_u8_dot() -> bool {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        // Lane 0: 255 · 127 twice overflows an i16 pair sum (a saturating lowering gives 65534);
        // 255 read as signed is -1 (-508). Lane 1 the same negated. Lanes 2 and 3: 128 (-128 signed)
        // against mixed signs, and small values that every reading gets right.
        let x: [i8; 16] = [127, 127, 127, 127, -127, -127, -127, -127, 127, -127, 1, -1, 3, -5, 7, 0];
        let w: [u8; 16] = [255, 255, 255, 255, 255, 255, 255, 255, 128, 128, 200, 128, 1, 2, 3, 4];
        let want: [i32; 4] = core::array::from_fn(|l| (0..4).map(|i| x[4 * l + i] as i32 * w[4 * l + i] as i32).sum());
        let x = core::hint::black_box(v128_load(x.as_ptr() as *const v128));
        let w = core::hint::black_box(v128_load(w.as_ptr() as *const v128));
        let got = i32x4_relaxed_dot_i8x16_i7x16_add(x, w, i32x4_splat(0));
        let mut lanes = [0i32; 4];
        v128_store(lanes.as_mut_ptr() as *mut v128, got);
        lanes == want
    }
}
