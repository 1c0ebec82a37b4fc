//! The x86-64 kernels: Q8_0 ([`q8_0`]: the narrow form on AVX2, AVX-VNNI or AVX-512 VNNI, the
//! wide form on AVX-512 VNNI, AMX tiles in [`amx`]) and Q4K ([`q4k`]), chosen at load by the
//! CPU's features ([`TileForm`]); [`tiles`] schedules every form's tiles over the threads.

pub mod amx;
pub mod q4k;
pub mod q8_0;
pub mod tiles;

use amx::AMX_COLS;

/// Weight rows interleaved together in the narrow form: the eight lanes of one accumulator.
pub(crate) const COLS: usize = 8;
use std::arch::x86_64::*;

/// Activation rows per pass over a thread's weight groups (a multiple of the kernels' tile rows).
pub(crate) const PASS_ROWS: usize = 48;
/// Below this many activation rows, a product quantizes them on the calling thread. It was 64,
/// when rayon's other threads slept between a forward's steps and each step had to wake them;
/// they now stay awake through a forward (`crate::threads`, as the trainer runs), and at one tweet of 16
/// tokens this serial work (rotation and quantization) was a fifth of what one thread ran
/// while the other waited.
pub(crate) const PARALLEL_ROWS: usize = 8;
/// Blocks of 32 values per pass over the weights: a pass's activations (48 × 256 bytes) and
/// one weight group's share (8 × 256) stay in L1 while every group runs over them. Partial
/// sums wait in the output between passes, so the summation order is unchanged.
const PASS_BLOCKS: usize = 8;
/// The lanes of a 512-bit accumulator: the wide forms' columns per register.
pub(crate) const WIDE_LANES: usize = 16;

/// Whether this CPU runs the kernel.
pub fn supported() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// How the kernel's inner step multiplies 32 bytes of weights by 32 of activations and adds
/// the products, four to a lane, into 8 × i32. Every form gives the same exact integer sums,
/// so the same numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ByteDot {
    /// `vpmaddubsw` to i16 pair sums, `vpmaddwd` against ones to i32, then an add.
    Avx2,
    /// One `vpdpbusd` (AVX-VNNI).
    AvxVnni,
    /// The same instruction from AVX-512 VNNI, on 256-bit registers (AVX-512 VL).
    Avx512Vnni,
}

impl ByteDot {
    /// The fastest form this CPU has (given `supported()`; see the module comment).
    pub(crate) fn detect() -> Self {
        [ByteDot::AvxVnni, ByteDot::Avx512Vnni].into_iter().find(|d| d.available()).unwrap_or(ByteDot::Avx2)
    }

    /// Whether the kernel wants the activations stored as `x + 128` (see `Tile::run_with`).
    fn offsets_activations(self) -> bool {
        self != ByteDot::Avx2
    }

    /// Whether this CPU has the form's instructions (given `supported()`).
    pub(crate) fn available(self) -> bool {
        match self {
            ByteDot::Avx2 => true,
            ByteDot::AvxVnni => is_x86_feature_detected!("avxvnni"),
            ByteDot::Avx512Vnni => is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl"),
        }
    }
}

/// A kernel tile whose inner step is a `ByteDot`.
pub(crate) trait ByteDotTile {
    /// Runs the tile's `R` rows with `dot(sum, a, b)` as the inner step: unsigned bytes `a`
    /// times signed bytes `b`, four products to an i32 lane, added to `sum`. `VNNI` says the
    /// step is `vpdpbusd`, whose lanes do not saturate; otherwise it goes through i16 pair sums.
    ///
    /// # Safety
    /// As the tile's; called from `ByteDot::run`, which enables the step's instructions. The
    /// body must be `#[inline(always)]`, so that it is compiled with them.
    unsafe fn run_with<const R: usize, const VNNI: bool>(self, dot: impl Fn(__m256i, __m256i, __m256i) -> __m256i);

    /// The tile's forms with each inner step (AVX2, AVX-VNNI, AVX-512 VNNI), as the tests'
    /// report of the forms that ran names them.
    #[cfg(any(test, feature = "tested-forms"))]
    const FORMS: [crate::tested_forms::KernelForm; 3];
}

impl ByteDot {
    /// Runs `tile` with this form's instructions.
    ///
    /// # Safety
    /// The tile's conditions, and the CPU must have AVX2, FMA and this form's features.
    pub(crate) unsafe fn run<const R: usize, T: ByteDotTile>(self, tile: T) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            match self {
                ByteDot::Avx2 => run_avx2::<R, T>(tile),
                ByteDot::AvxVnni => run_avx_vnni::<R, T>(tile),
                ByteDot::Avx512Vnni => run_avx512_vnni::<R, T>(tile),
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<const R: usize, T: ByteDotTile>(tile: T) {
    #[cfg(any(test, feature = "tested-forms"))]
    crate::tested_forms::ran(T::FORMS[0]);
    // SAFETY: `ByteDot::run` calls this only where the CPU has these features, with a tile that meets its conditions.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        tile.run_with::<R, false>(|sum, a, b| {
            _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones))
        });
    }
}

#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn run_avx_vnni<const R: usize, T: ByteDotTile>(tile: T) {
    #[cfg(any(test, feature = "tested-forms"))]
    crate::tested_forms::ran(T::FORMS[1]);
    // SAFETY: `ByteDot::run` calls this only where the CPU has these features, with a tile that meets its conditions.
    unsafe {
        tile.run_with::<R, true>(|sum, a, b| _mm256_dpbusd_avx_epi32(sum, a, b));
    }
}

#[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
unsafe fn run_avx512_vnni<const R: usize, T: ByteDotTile>(tile: T) {
    #[cfg(any(test, feature = "tested-forms"))]
    crate::tested_forms::ran(T::FORMS[2]);
    // SAFETY: `ByteDot::run` calls this only where the CPU has these features, with a tile that meets its conditions.
    unsafe {
        tile.run_with::<R, true>(|sum, a, b| _mm256_dpbusd_epi32(sum, a, b));
    }
}

/// How a packed matrix (`PackedQ8`, `x86::q4k::PackedQ4K`) runs its tiles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TileForm {
    /// Groups of 8 weight rows on 256-bit registers, with this inner step.
    Narrow(ByteDot),
    /// Groups of 16 weight rows per 512-bit register (AVX-512 VNNI, with BW); Q8_0 takes two
    /// registers, 32 rows, per group (see `WideTile`).
    Wide,
    /// Q8_0 only: groups of 16 weight rows on AMX tiles (`x86::amx`).
    Amx,
}

impl TileForm {
    /// The fastest form this CPU has for `n` weight rows (given `supported()`), for a kernel
    /// whose wide groups have `wide_cols` rows.
    pub(crate) fn detect(n: usize, wide_cols: usize) -> Self {
        if TileForm::Wide.available() && n.is_multiple_of(wide_cols) {
            TileForm::Wide
        } else {
            TileForm::Narrow(ByteDot::detect())
        }
    }

    /// Whether this CPU has the form's instructions (given `supported()`).
    pub(crate) fn available(self) -> bool {
        match self {
            TileForm::Narrow(dot) => dot.available(),
            TileForm::Wide => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            TileForm::Amx => amx::available(),
        }
    }

    /// Weight rows interleaved in a group, for a kernel whose wide groups have `wide_cols`.
    pub(crate) fn cols(self, wide_cols: usize) -> usize {
        match self {
            TileForm::Narrow(_) => COLS,
            TileForm::Wide => wide_cols,
            TileForm::Amx => AMX_COLS,
        }
    }
}

/// `f32::round` of each value, to i32: truncate, then step away from zero when the dropped
/// fraction is at least one half (`v - trunc(v)` is exact for the magnitudes quantization sees).
///
/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn round_half_away(v: __m256) -> __m256i {
    let sign = _mm256_set1_ps(-0.0);
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    let away = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
    let step = _mm256_and_ps(away, _mm256_or_ps(_mm256_set1_ps(1.0), _mm256_and_ps(v, sign)));
    _mm256_cvttps_epi32(_mm256_add_ps(t, step))
}

/// Four vectors of 8 × i32 as 32 bytes in order, saturated to [-128, 127].
///
/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_bytes(q: [__m256i; 4]) -> __m256i {
    // The packs work within 128-bit lanes, leaving the 4-value pieces of a-d as
    // [a0 b0 c0 d0 a1 b1 c1 d1]; the permutation puts them back in order.
    let words = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}
