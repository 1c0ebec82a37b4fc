//! How the browser's products run over their tiles, for Q8_0 and Q4K alike: groups of weight
//! rows against passes of activation rows ([`for_each_tile`]), each tile's size a function of
//! its own ([`run_tile`]), where a tile's sums go ([`TileOut`]), and the buffers of a product's
//! quantized activations ([`SCRATCH`]).

use core::arch::wasm32::*;
use std::cell::RefCell;

/// Weight rows per i32x4 accumulator: its four lanes.
pub(super) const LANES: usize = 4;
/// Weight rows per pass (a group): two accumulators per activation row. A 4-row group at the
/// end takes the rest when the row count is 4 more than a multiple of 8.
pub(super) const GROUP: usize = 8;
/// Activation rows per pass. The 2 × ROWS integer sums, two weight vectors and a broadcast stay
/// within the 16 vector registers V8 has on x86-64. Per 64 products that is 2 weight loads, 4
/// broadcasts, 8 dots and 8 adds, against 1 + 6 + 6 + 6 per 48 for 4 weight rows × 6 activation
/// rows: 15-20 % faster on roberta-base's shapes, in a Chromium worker and under node (Zen 3; a
/// one-off micro-benchmark of the Q8_0 kernel). 5 rows spill; 3 rows, or 12 or 16 weight rows,
/// were no faster.
pub(super) const ROWS: usize = 4;

/// Calls `tile(c, width, r, rows)` for every tile of a product of `m` activation rows with `n`
/// weight rows: the group of `width` weight rows from row `c` (`GROUP`, or 4 for a last group
/// of 4) against `rows` activation rows from row `r` (`ROWS`, fewer at the end).
#[inline(always)]
pub(super) fn for_each_tile(n: usize, m: usize, mut tile: impl FnMut(usize, usize, usize, usize)) {
    for c in (0..n).step_by(GROUP) {
        let width = GROUP.min(n - c);
        let mut r = 0;
        while r < m {
            let rows = ROWS.min(m - r);
            tile(c, width, r, rows);
            r += rows;
        }
    }
}

/// `$tile.run::<$form, R, V>()` for a tile of `$rows` activation rows (1..=`ROWS`) and `$width`
/// weight rows (`GROUP`: V = 2, or 4: V = 1). Each size is a function of its own, whose loops
/// LLVM unrolls to its registers. In the tests' builds it notes that the form ran.
macro_rules! run_tile {
    ($tile:expr, $form:ty, $rows:expr, $width:expr) => {{
        #[cfg(feature = "tested-forms")]
        $crate::tested_forms::ran(<$form>::TESTED_AS);
        match ($rows, $width) {
            (4, $crate::wasm::tiles::GROUP) => $tile.run::<$form, 4, 2>(),
            (3, $crate::wasm::tiles::GROUP) => $tile.run::<$form, 3, 2>(),
            (2, $crate::wasm::tiles::GROUP) => $tile.run::<$form, 2, 2>(),
            (_, $crate::wasm::tiles::GROUP) => $tile.run::<$form, 1, 2>(),
            (4, _) => $tile.run::<$form, 4, 1>(),
            (3, _) => $tile.run::<$form, 3, 1>(),
            (2, _) => $tile.run::<$form, 2, 1>(),
            _ => $tile.run::<$form, 1, 1>(),
        }
    }};
}
pub(super) use run_tile;

/// Where a tile's sums go: rows `row0..` and columns `col0..` of `out` (`n` values a row), with
/// the group's `bias` added.
pub(super) struct TileOut<'a> {
    pub bias: &'a [f32],
    pub out: &'a mut [f32],
    pub row0: usize,
    pub col0: usize,
    pub n: usize,
}

impl TileOut<'_> {
    /// Stores `acc` plus the bias: row `r`, vector `v` of `acc` at row `row0 + r`, columns
    /// `col0 + 4v..col0 + 4v + 4`.
    ///
    /// # Safety
    /// `bias` must hold `4 · V` values and `out` rows `row0..row0 + R` of `n` values, with
    /// `col0 + 4 · V <= n`.
    #[inline(always)]
    pub unsafe fn store<const R: usize, const V: usize>(self, acc: [[v128; V]; R]) {
        debug_assert!(self.out.len() >= (self.row0 + R) * self.n && self.col0 + LANES * V <= self.n);
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            for (r, a) in acc.into_iter().enumerate() {
                for (v, a) in a.into_iter().enumerate() {
                    let bias = v128_load(self.bias.as_ptr().add(v * LANES) as *const v128);
                    let dst = self.out.as_mut_ptr().add((self.row0 + r) * self.n + self.col0 + v * LANES);
                    v128_store(dst as *mut v128, f32x4_add(a, bias));
                }
            }
        }
    }
}

/// One product's quantized activations, in buffers reused across products (wasm memory never
/// shrinks, so a fresh buffer per product would only add allocator work). Each form uses its own.
pub(super) struct Scratch {
    /// The values widened to i16 (the simd128 forms; Q8_0's relaxed form: one row before its
    /// layout).
    pub wide: Vec<i16>,
    /// The values as bytes (the relaxed forms).
    #[cfg(feature = "relaxed-simd")]
    pub narrow: Vec<i8>,
    /// The scales: Q8_0's per block of 32 values, Q4K's per block of 256.
    pub scales: Vec<f32>,
    /// Q8_0's relaxed form: `-128 · Σ x` per row and block.
    #[cfg(feature = "relaxed-simd")]
    pub corrections: Vec<i32>,
    /// Q4K: `Σ x_q` per sub-block of 32 values.
    pub sums: Vec<i16>,
}

thread_local! {
    pub(super) static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            wide: Vec::new(),
            #[cfg(feature = "relaxed-simd")]
            narrow: Vec::new(),
            scales: Vec::new(),
            #[cfg(feature = "relaxed-simd")]
            corrections: Vec::new(),
            sums: Vec::new(),
        })
    };
}
