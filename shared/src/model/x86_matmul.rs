//! `x · Wᵀ` for Q8_0 weights on x86-64 with AVX2 and FMA, replacing candle's kernels natively.
//!
//! candle's x86 Q8_0 product quantizes the activations on one thread and then, without VNNI,
//! computes every output as a separate dot product over `BlockQ8_0`s: each block of both
//! operands is loaded again for every (row, column) pair and reduced horizontally. At batch 32
//! that put a roberta-base forward behind PyTorch's fp32 (docs/benchmarks.md).
//!
//! This is the browser kernel (`wasm_matmul`) on 256-bit registers, and gives the same numbers:
//! activations quantized exactly as `BlockQ8_0::from_float` does, each block's integer dot exact,
//! then scaled by `d_w · d_x` and summed block after block in f32 with the same operations in the
//! same order. Differences from the browser kernel:
//! - eight weight rows are interleaved in groups of four values, so one broadcast of four
//!   activations meets eight rows at once; the products go through `vpmaddubsw` (unsigned ×
//!   signed bytes, 32 products per instruction) with the weights' sign moved onto the
//!   activations (`|w| · (x · sign w) = w · x`): exact, since |w| ≤ 128 and |x| ≤ 127 keep each
//!   pair's sum within i16. On the AMD Zen 3 of docs/benchmarks.md's first table, the inner
//!   loop alone ran at 51.9 GMAC/s per core this way against 35.9 sign-extending to i16 for `vpmaddwd` (as the
//!   browser does); the whole product gained ~10-20 %;
//! - on CPUs with VNNI (AVX-VNNI, or AVX-512 VNNI on 256-bit registers) one `vpdpbusd` does
//!   the products and their sums in i32, on activations stored as `x + 128` with `128 · Σ w`
//!   taken off each block's sums: a broadcast and one instruction per four values and row,
//!   against five. On the Intel machine (docs/benchmarks.md) the products went from ~55-62 to
//!   ~92-100 GMAC/s per core and a q8_0 forward took 0.66-0.72× its time. candle's own VNNI
//!   path is no substitute: it quantizes the activations to Q8K (one scale per 256 values), so
//!   its numbers are coarser than Q8_0's and not the browser's;
//! - with AVX-512 VNNI (and BW), the wide form (`WideTile`) runs on 512-bit registers, with
//!   the roles swapped: the weights are stored as `w + 128` and the activations stay signed
//!   (`128 · Σ x` comes off each block's sums). One instruction per four values and 16 rows.
//!   On the AMD Zen 5 (docs/benchmarks.md) the products went from ~70-110 GMAC/s per core
//!   (the 256-bit VNNI form) to ~130-210, with groups of 16 rows whose broadcast of activations folded into
//!   `vpdpbusd` as a memory operand. On its Ice Lake that form waited on loads; groups are now
//!   32 rows, two accumulators per activation row sharing one broadcast (see `WideTile`);
//! - with AMX-INT8 (Sapphire Rapids and later), the AMX form (`x86_amx`): groups of 16 weight
//!   rows as tiles of signed bytes, activations row by row, one tile product per block of 16
//!   activation rows × 16 weight rows;
//! - the products run on rayon's threads (`RAYON_NUM_THREADS`, like candle's), each taking a
//!   share of the weight rows;
//! - the work goes in passes of `PASS_ROWS` activation rows × `PASS_BLOCKS` blocks, whose
//!   quantized values stay in L1 while every weight group of the thread's share runs over them.
//!   With at most `PASS_ROWS` rows, one pass takes all blocks, so that each group's weights
//!   are read as one stream (the AMX form goes one tile of rows over all blocks at a time).
//!   `for_each_tile` does this scheduling for `x86_q4k` too;
//! - in the wide and AMX forms (and in both of `x86_q4k`'s forms), the quantized activations
//!   are laid out once per product so that each tile reads one contiguous run per block
//!   (`tile_major`); each row is quantized straight into that order
//!   (`quantize_rows_tile_major`).
//!
//! Used only where the CPU has AVX2 and FMA (checked at load); elsewhere candle's kernels stay.

use super::layers::{packed_product, with_f32_slice};
use super::quant_blocks::{Q8_0Blocks, BLOCK};
use super::x86_amx::{self, AmxTile, AMX_COLS, AMX_ROWS};
use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};
use half::f16;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Weight rows interleaved together: the eight lanes of one accumulator.
const COLS: usize = 8;
/// Activation rows per tile: each loaded weight vector serves this many. 2 × ROWS
/// accumulators plus the weight, its absolute value, the broadcast and the constant ones fill
/// AVX2's 16 registers.
const ROWS: usize = 6;
/// Activation rows per pass over a thread's weight groups (a multiple of the kernels' tile rows).
pub(super) const PASS_ROWS: usize = 48;
/// Below this many activation rows, a product quantizes them on the calling thread. It was 64,
/// when rayon's other threads slept between a forward's steps and each step had to wake them;
/// they now stay awake through a forward (`with_workers_spinning`), and at one tweet of 16
/// tokens this serial work (rotation and quantization) was a fifth of what one thread ran
/// while the other waited.
pub(super) const PARALLEL_ROWS: usize = 8;
/// Blocks of 32 values per pass over the weights: a pass's activations (48 × 256 bytes) and
/// one weight group's share (8 × 256) stay in L1 while every group runs over them. Partial
/// sums wait in the output between passes, so the summation order is unchanged.
const PASS_BLOCKS: usize = 8;
/// The lanes of a 512-bit accumulator: the wide forms' columns per register.
pub(super) const WIDE_LANES: usize = 16;
/// The wide form's weight rows per group: two accumulators per activation row, so that each
/// broadcast of four activations serves 32 rows (see `WideTile`).
const WIDE_COLS: usize = 2 * WIDE_LANES;
/// The wide form's activation rows per tile: 4 × 4 accumulators (the block's integer sums and
/// the f32 sums, two of each per row), the two weight vectors, the broadcasts and the scales
/// fit AVX-512's 32 registers with room to spare. At 6 rows, which fit on paper, LLVM spilled
/// registers to the stack in the inner loop.
const WIDE_ROWS: usize = 4;

/// Whether this CPU runs the kernel.
pub fn supported() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// How the kernel's inner step multiplies 32 bytes of weights by 32 of activations and adds
/// the products, four to a lane, into 8 × i32. Every form gives the same exact integer sums,
/// so the same numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ByteDot {
    /// `vpmaddubsw` to i16 pair sums, `vpmaddwd` against ones to i32, then an add.
    Avx2,
    /// One `vpdpbusd` (AVX-VNNI).
    AvxVnni,
    /// The same instruction from AVX-512 VNNI, on 256-bit registers (AVX-512 VL).
    Avx512Vnni,
}

impl ByteDot {
    /// The fastest form this CPU has (given `supported()`; see the module comment).
    pub(super) fn detect() -> Self {
        [ByteDot::AvxVnni, ByteDot::Avx512Vnni].into_iter().find(|d| d.available()).unwrap_or(ByteDot::Avx2)
    }

    /// Whether the kernel wants the activations stored as `x + 128` (see `Tile::run_with`).
    fn offsets_activations(self) -> bool {
        self != ByteDot::Avx2
    }

    /// Whether this CPU has the form's instructions (given `supported()`).
    pub(super) fn available(self) -> bool {
        match self {
            ByteDot::Avx2 => true,
            ByteDot::AvxVnni => is_x86_feature_detected!("avxvnni"),
            ByteDot::Avx512Vnni => is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl"),
        }
    }
}

/// A kernel tile whose inner step is a `ByteDot`.
pub(super) trait ByteDotTile {
    /// Runs the tile's `R` rows with `dot(sum, a, b)` as the inner step: unsigned bytes `a`
    /// times signed bytes `b`, four products to an i32 lane, added to `sum`. `VNNI` says the
    /// step is `vpdpbusd`, whose lanes do not saturate; otherwise it goes through i16 pair sums.
    ///
    /// # Safety
    /// As the tile's; called from `ByteDot::run`, which enables the step's instructions. The
    /// body must be `#[inline(always)]`, so that it is compiled with them.
    unsafe fn run_with<const R: usize, const VNNI: bool>(self, dot: impl Fn(__m256i, __m256i, __m256i) -> __m256i);
}

impl ByteDot {
    /// Runs `tile` with this form's instructions.
    ///
    /// # Safety
    /// The tile's conditions, and the CPU must have AVX2, FMA and this form's features.
    pub(super) unsafe fn run<const R: usize, T: ByteDotTile>(self, tile: T) {
        match self {
            ByteDot::Avx2 => run_avx2::<R, T>(tile),
            ByteDot::AvxVnni => run_avx_vnni::<R, T>(tile),
            ByteDot::Avx512Vnni => run_avx512_vnni::<R, T>(tile),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<const R: usize, T: ByteDotTile>(tile: T) {
    let ones = _mm256_set1_epi16(1);
    tile.run_with::<R, false>(|sum, a, b| _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones)));
}

#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn run_avx_vnni<const R: usize, T: ByteDotTile>(tile: T) {
    tile.run_with::<R, true>(|sum, a, b| _mm256_dpbusd_avx_epi32(sum, a, b));
}

#[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
unsafe fn run_avx512_vnni<const R: usize, T: ByteDotTile>(tile: T) {
    tile.run_with::<R, true>(|sum, a, b| _mm256_dpbusd_epi32(sum, a, b));
}

/// How a packed matrix (`PackedQ8`, `x86_q4k::PackedQ4K`) runs its tiles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum TileForm {
    /// Groups of 8 weight rows on 256-bit registers, with this inner step.
    Narrow(ByteDot),
    /// Groups of 16 weight rows per 512-bit register (AVX-512 VNNI, with BW); Q8_0 takes two
    /// registers, 32 rows, per group (see `WideTile`).
    Wide,
    /// Q8_0 only: groups of 16 weight rows on AMX tiles (`x86_amx`).
    Amx,
}

impl TileForm {
    /// The fastest form this CPU has for `n` weight rows (given `supported()`), for a kernel
    /// whose wide groups have `wide_cols` rows.
    pub(super) fn detect(n: usize, wide_cols: usize) -> Self {
        if TileForm::Wide.available() && n.is_multiple_of(wide_cols) {
            TileForm::Wide
        } else {
            TileForm::Narrow(ByteDot::detect())
        }
    }

    /// Whether this CPU has the form's instructions (given `supported()`).
    pub(super) fn available(self) -> bool {
        match self {
            TileForm::Narrow(dot) => dot.available(),
            TileForm::Wide => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            TileForm::Amx => x86_amx::available(),
        }
    }

    /// Weight rows interleaved in a group, for a kernel whose wide groups have `wide_cols`.
    pub(super) fn cols(self, wide_cols: usize) -> usize {
        match self {
            TileForm::Narrow(_) => COLS,
            TileForm::Wide => wide_cols,
            TileForm::Amx => AMX_COLS,
        }
    }
}

/// A Q8_0 matrix `[n, k]` repacked for the kernel (see the module comment).
pub struct PackedQ8 {
    n: usize,
    k: usize,
    /// Per group of `form.cols(WIDE_COLS)` rows, per block: 8 quads × the rows × 4 values (in
    /// the AMX form, a tile of weights); in the wide form, `w + 128` as unsigned bytes.
    quants: Vec<i8>,
    /// Per group, per block: the rows' scales.
    scales: Vec<f32>,
    form: TileForm,
}

impl PackedQ8 {
    /// The packed form of a Q8_0 matrix, or `None` when the kernel does not apply (no AVX2,
    /// another type, or a row count not a multiple of 8, like a 3-label head).
    pub fn from_qtensor(w: &QTensor) -> Result<Option<Self>> {
        if !supported() {
            return Ok(None);
        }
        let Some(blocks) = Q8_0Blocks::of(w, COLS)? else { return Ok(None) };
        let form = if TileForm::Amx.available() && blocks.n.is_multiple_of(AMX_COLS) {
            TileForm::Amx
        } else {
            TileForm::detect(blocks.n, WIDE_COLS)
        };
        Ok(Some(Self::pack(&blocks, form)))
    }

    /// `w` packed for `form`, whose group size must divide its rows.
    fn pack(w: &Q8_0Blocks, form: TileForm) -> Self {
        let (n, k, kb, cols) = (w.n, w.k, w.k / BLOCK, form.cols(WIDE_COLS));
        assert!(n.is_multiple_of(cols), "{n} rows in groups of {cols}");
        let mut quants = vec![0i8; n * k];
        let mut scales = vec![0f32; n * kb];
        for row in 0..n {
            let (g, j) = (row / cols, row % cols);
            for b in 0..kb {
                let (scale, values) = w.block(row, b);
                scales[(g * kb + b) * cols + j] = scale;
                // Value i of the block is value i % 4 of quad i / 4.
                let dst = (g * kb + b) * BLOCK * cols;
                for (i, v) in values.enumerate() {
                    quants[dst + i / 4 * 4 * cols + j * 4 + i % 4] =
                        if form == TileForm::Wide { v ^ i8::MIN } else { v };
                }
            }
        }
        PackedQ8 { n, k, quants, scales, form }
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `x · Wᵀ + bias` for `x` of shape `[.., k]` (f32) and `bias` `[n]` (f32). With `rotation`,
    /// each row of `x` is first rotated in Hadamard blocks of that size, as
    /// `rotation::rotate_rows` does (the weight was stored rotated).
    pub fn forward(&self, x: &Tensor, bias: &Tensor, rotation: Option<usize>) -> Result<Tensor> {
        self.check_rotation(rotation)?;
        packed_product(x, bias, (self.n, self.k), |m, xs, bs, out| self.matmul(m, xs, bs, rotation, out))
    }

    /// The products of several matrices with the same input `x`, quantizing (and rotating) it
    /// once for all of them: a layer's query, key and value projections read the same input,
    /// and preparing it was ~2/3 of what their three products spent outside the kernel.
    /// `rotation` as for `forward`; the matrices must share their input (`shares_input`).
    pub fn forward_many(products: &[(&PackedQ8, &Tensor)], x: &Tensor, rotation: Option<usize>) -> Result<Vec<Tensor>> {
        let Some(((first, _), rest)) = products.split_first() else { return Ok(vec![]) };
        if rest.iter().any(|(w, _)| !first.shares_input(w)) {
            candle_core::bail!("matrices of different input widths or forms cannot share their input");
        }
        first.check_rotation(rotation)?;
        let x = x.contiguous()?;
        let features = x.dim(candle_core::D::Minus1)?;
        if features != first.k {
            candle_core::bail!("matmul: input has {features} features, the weight {}", first.k);
        }
        let prepared = with_f32_slice(&x, |xs| Ok(first.prepare(xs.len() / first.k, xs, rotation)))?;
        let multiply = |(w, bias): &(&PackedQ8, &Tensor)| {
            packed_product(&x, bias, (w.n, w.k), |_, _, bs, out| w.multiply(&prepared, bs, out))
        };
        products.iter().map(multiply).collect()
    }

    /// Whether `other` can read the input prepared for this matrix (`forward_many`).
    pub fn shares_input(&self, other: &PackedQ8) -> bool {
        self.k == other.k && self.form == other.form
    }

    fn check_rotation(&self, rotation: Option<usize>) -> Result<()> {
        if let Some(block) = rotation {
            if !self.k.is_multiple_of(block) || !block.is_power_of_two() {
                candle_core::bail!("cannot rotate rows of {} values in Hadamard blocks of {block}", self.k);
            }
        }
        Ok(())
    }

    fn matmul(&self, m: usize, xs: &[f32], bias: &[f32], rotation: Option<usize>, out: &mut [MaybeUninit<f32>]) {
        self.multiply(&self.prepare(m, xs, rotation), bias, out);
    }

    /// `m` rows of `xs`, rotated if asked, quantized and arranged as this matrix's form reads
    /// them.
    fn prepare(&self, m: usize, xs: &[f32], rotation: Option<usize>) -> PreparedInput {
        let k = self.k;
        let activations = match self.form {
            TileForm::Wide => {
                let (xq, xd) = quantize_tile_major(xs, (m, k), rotation, WIDE_ROWS);
                Activations::Wide(WideActivations::pack(k, xq, xd))
            }
            TileForm::Amx => {
                let (xq, xd) = quantize_tile_major(xs, (m, k), rotation, AMX_ROWS);
                Activations::Amx { xq, xd }
            }
            TileForm::Narrow(dot) => {
                // Tiles of one row are the rows as they are.
                let (mut xq, xd) = quantize_tile_major(xs, (m, k), rotation, 1);
                if dot.offsets_activations() {
                    // x + 128 as an unsigned byte (see `Tile::run_with`).
                    xq.iter_mut().for_each(|v| *v ^= i8::MIN);
                }
                Activations::Narrow { xq, xd }
            }
        };
        PreparedInput { m, k, form: self.form, activations }
    }

    /// The product of the prepared input `x` with this matrix, plus `bias`, into `out`.
    fn multiply(&self, x: &PreparedInput, bias: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert!(x.k == self.k && x.form == self.form, "an input prepared for another matrix");
        let (m, n, k, kb) = (x.m, self.n, self.k, self.k / BLOCK);
        if m == 0 {
            return;
        }
        let (dot, xq, xd) = match (&x.activations, self.form) {
            (Activations::Narrow { xq, xd }, TileForm::Narrow(dot)) => (dot, xq, xd),
            (Activations::Wide(x), _) => {
                for_each_tile(
                    (m, n),
                    kb,
                    bias,
                    out,
                    (WIDE_COLS, PASS_ROWS, PASS_BLOCKS, WIDE_ROWS),
                    |g, r, rows, out| {
                        let tile = WideTile {
                            wq: self.quants[g * kb * BLOCK * WIDE_COLS..].as_ptr(),
                            ws: self.scales[g * kb * WIDE_COLS..].as_ptr(),
                            x: x.tile(r),
                            out,
                        };
                        // SAFETY: as for the narrow tiles below; the wide form's features were checked
                        // when the matrix was packed.
                        unsafe {
                            match rows {
                                6 => tile.run::<6>(),
                                5 => tile.run::<5>(),
                                4 => tile.run::<4>(),
                                3 => tile.run::<3>(),
                                2 => tile.run::<2>(),
                                _ => tile.run::<1>(),
                            }
                        }
                    },
                );
                return;
            }
            (Activations::Amx { xq, xd }, _) => {
                // Passes of one tile of rows over all blocks: each tile's sums are stored once,
                // not once per pass. Against passes of `PASS_ROWS` × `PASS_BLOCKS`, the product
                // at 2048 rows ran at ~1.2× the rate, the forward took ~0.9× the time.
                for_each_tile((m, n), kb, bias, out, (AMX_COLS, AMX_ROWS, kb, AMX_ROWS), |g, r, rows, out| {
                    let tile = AmxTile {
                        wq: self.quants[g * kb * BLOCK * AMX_COLS..].as_ptr(),
                        ws: self.scales[g * kb * AMX_COLS..].as_ptr(),
                        xq: xq[r * kb * BLOCK..].as_ptr(),
                        xd: xd[r * kb..].as_ptr(),
                        out,
                    };
                    // SAFETY: the tile's 16 rows exist (padded) and `out` is the tile's, as for
                    // the narrow tiles below; `available()` held when the matrix was packed.
                    // Sums of rows past `rows` are not scaled (a batch of one has one row).
                    unsafe {
                        match rows {
                            9.. => tile.run::<16>(rows),
                            5..=8 => tile.run::<8>(rows),
                            3 | 4 => tile.run::<4>(rows),
                            2 => tile.run::<2>(rows),
                            _ => tile.run::<1>(rows),
                        }
                    }
                });
                return;
            }
            (Activations::Narrow { .. }, _) => unreachable!("checked above"),
        };
        for_each_tile((m, n), kb, bias, out, (COLS, PASS_ROWS, PASS_BLOCKS, ROWS), |g, r, rows, out| {
            let tile = Tile {
                wq: self.quants[g * kb * BLOCK * COLS..].as_ptr(),
                ws: self.scales[g * kb * COLS..].as_ptr(),
                xq: xq[r * k..].as_ptr(),
                xd: xd[r * kb..].as_ptr(),
                k,
                out,
            };
            // SAFETY: `rows` activation rows from `r` exist; `out` is the tile's (see
            // `for_each_tile`); AVX2, FMA and `dot`'s features were checked when the matrix
            // was packed.
            unsafe {
                match rows {
                    6 => dot.run::<6, _>(tile),
                    5 => dot.run::<5, _>(tile),
                    4 => dot.run::<4, _>(tile),
                    3 => dot.run::<3, _>(tile),
                    2 => dot.run::<2, _>(tile),
                    _ => dot.run::<1, _>(tile),
                }
            }
        });
    }
}

/// A product's input as `PackedQ8::prepare` leaves it, for the matrices that share it.
pub struct PreparedInput {
    m: usize,
    k: usize,
    form: TileForm,
    activations: Activations,
}

enum Activations {
    Wide(WideActivations),
    /// `tile_major`, in tiles of `AMX_ROWS` rows (padded with zeros).
    Amx {
        xq: Vec<i8>,
        xd: Vec<f32>,
    },
    /// Row by row; in the narrow form, offset by 128 where its dot product needs that.
    Narrow {
        xq: Vec<i8>,
        xd: Vec<f32>,
    },
}

/// Calls `tile(group, row, rows, out)` for every tile of an `m × n` product over `kb` blocks
/// (`out`: where the tile's `cols` columns of `rows` rows go, see `TileOut`). On rayon's
/// threads, each taking a share of the groups of `cols` weight rows, in passes of `pass_rows`
/// rows × `pass_blocks` blocks (whose quantized activations stay in L1 while every group of
/// the share runs over them; a single pass of rows takes all blocks at once), in tiles of at
/// most `tile_rows` rows. A group's tiles for the same rows come in block order, one at a
/// time, so partial sums can wait in the output between passes.
pub(super) fn for_each_tile(
    (m, n): (usize, usize),
    kb: usize,
    bias: &[f32],
    out: &mut [MaybeUninit<f32>],
    (cols, pass_rows, pass_blocks, tile_rows): (usize, usize, usize, usize),
    tile: impl Fn(usize, usize, usize, TileOut) + Sync,
) {
    // Every value of `out` belongs to one tile of the first pass (blocks from 0), which writes
    // it without reading it: so `out` need not be initialized, and the caller relies on it
    // being written (`packed_product`). With no blocks there would be no tiles.
    assert!(n.is_multiple_of(cols) && bias.len() == n && out.len() == m * n && kb > 0, "a {m} × {n} product");
    let groups = n / cols;
    // With one pass of rows (a tweet or two), splitting the blocks into passes only breaks each
    // group's weights, which then dominate the traffic, into pieces: the activations are
    // read from L2 at worst, and the weights stream. At 1 × 16 that took a forward from
    // ~15-19 ms to ~14 ms (q8_0) and from ~11 ms to ~8.5-11 ms (q4k) on the Zen 5 machine
    // (docs/benchmarks.md).
    let pass_blocks = if m <= pass_rows { kb } else { pass_blocks };
    let out = DisjointWrites(out.as_mut_ptr().cast::<f32>());
    // A few shares per thread, so a thread slowed by other work does not hold up the rest.
    let share = groups.div_ceil(rayon::current_num_threads() * 4).max(1);
    (0..groups).into_par_iter().step_by(share).for_each(|first| {
        for (r0, b0) in (0..m).step_by(pass_rows).flat_map(|r0| (0..kb).step_by(pass_blocks).map(move |b0| (r0, b0))) {
            let pass = pass_rows.min(m - r0);
            let blocks = b0..(b0 + pass_blocks).min(kb);
            for g in first..(first + share).min(groups) {
                let mut r = r0;
                while r < r0 + pass {
                    let rows = tile_rows.min(r0 + pass - r);
                    let tile_out = TileOut {
                        // SAFETY (of the offset): row r, column `cols · g` is inside the output.
                        out: unsafe { out.at(r * n + cols * g) },
                        n,
                        bias: bias[cols * g..].as_ptr(),
                        blocks: blocks.clone(),
                        last: blocks.end == kb,
                    };
                    tile(g, r, rows, tile_out);
                    r += rows;
                }
            }
        }
    });
}

/// A buffer written by several threads at disjoint places: the output matrix (by columns),
/// quantized activations (by rows).
pub(super) struct DisjointWrites<T>(pub(super) *mut T);
// SAFETY: the threads write disjoint elements (see `for_each_tile` and `quantize_rows_tile_major`)
// and nothing reads until they join.
unsafe impl<T> Sync for DisjointWrites<T> {}

impl<T> DisjointWrites<T> {
    /// The buffer from element `offset` on.
    ///
    /// # Safety
    /// `offset` must be inside the buffer.
    pub(super) unsafe fn at(&self, offset: usize) -> *mut T {
        self.0.add(offset)
    }
}

/// Where one tile's sums go: 8, 16 or 32 columns of its rows of the output, over the blocks
/// of one pass. Each group's columns of each row belong to one tile at a time.
pub(super) struct TileOut {
    /// The output at the tile's first row and first column; rows are `n` apart.
    out: *mut f32,
    n: usize,
    /// The columns' biases.
    bias: *const f32,
    /// The blocks of this pass: the first pass starts the sums, later ones add to the partial
    /// sums waiting in the output, the last also adds the bias.
    pub(super) blocks: std::ops::Range<usize>,
    last: bool,
}

impl TileOut {
    /// The sums so far of `R` rows: zero, or what the passes before left in the output.
    ///
    /// # Safety
    /// The tile must have `R` rows, and the CPU AVX2.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn start<const R: usize>(&self) -> [__m256; R] {
        let mut acc = [_mm256_setzero_ps(); R];
        if self.blocks.start > 0 {
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm256_loadu_ps(self.out.add(r * self.n));
            }
        }
        acc
    }

    /// Stores the sums of `R` rows, with the bias after the last pass.
    ///
    /// # Safety
    /// As `start`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn finish<const R: usize>(&self, acc: [__m256; R]) {
        let bias = _mm256_loadu_ps(self.bias);
        for (r, a) in acc.into_iter().enumerate() {
            _mm256_storeu_ps(self.out.add(r * self.n), if self.last { _mm256_add_ps(a, bias) } else { a });
        }
    }

    /// `start` for `H` × 16 columns.
    ///
    /// # Safety
    /// The tile must have `R` rows of `H` × 16 columns, and the CPU AVX-512.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn start_wide<const R: usize, const H: usize>(&self) -> [[__m512; H]; R] {
        let mut acc = [[_mm512_setzero_ps(); H]; R];
        if self.blocks.start > 0 {
            for (r, row) in acc.iter_mut().enumerate() {
                for (h, a) in row.iter_mut().enumerate() {
                    *a = _mm512_loadu_ps(self.out.add(r * self.n + h * WIDE_LANES));
                }
            }
        }
        acc
    }

    /// `start` for the first `rows` of `R` rows of 16 columns; the rest start at zero. Not
    /// `start_wide` with a row count: the AMX product ran 10-25 % slower at 128-512 rows that way.
    ///
    /// # Safety
    /// The tile must have `rows` ≤ `R` rows of 16 columns, and the CPU AVX-512.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn start_rows<const R: usize>(&self, rows: usize) -> [__m512; R] {
        let mut acc = [_mm512_setzero_ps(); R];
        if self.blocks.start > 0 {
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                *a = _mm512_loadu_ps(self.out.add(r * self.n));
            }
        }
        acc
    }

    /// `finish` for the first `rows` of `R` rows of 16 columns.
    ///
    /// # Safety
    /// As `start_rows`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn finish_rows<const R: usize>(&self, acc: [__m512; R], rows: usize) {
        let bias = _mm512_loadu_ps(self.bias);
        for (r, a) in acc.into_iter().enumerate().take(rows) {
            _mm512_storeu_ps(self.out.add(r * self.n), if self.last { _mm512_add_ps(a, bias) } else { a });
        }
    }

    /// `finish` for `H` × 16 columns.
    ///
    /// # Safety
    /// As `start_wide`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn finish_wide<const R: usize, const H: usize>(&self, acc: [[__m512; H]; R]) {
        for (r, row) in acc.into_iter().enumerate() {
            for (h, a) in row.into_iter().enumerate() {
                let bias = _mm512_loadu_ps(self.bias.add(h * WIDE_LANES));
                let at = self.out.add(r * self.n + h * WIDE_LANES);
                _mm512_storeu_ps(at, if self.last { _mm512_add_ps(a, bias) } else { a });
            }
        }
    }
}

/// One activation row to Q8_0 exactly as candle's `BlockQ8_0::from_float`: `d = amax / 127` in
/// f32, `q = round(x · (1/d))` rounding half away from zero, `d` stored as f16 — which is the
/// value the dot product uses, so that is what `scales` gets.
///
/// # Safety
/// The CPU must have AVX2 (`supported`).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quantize_row(x: &[f32], q: &mut [i8], scales: &mut [f32]) {
    assert!(q.len() >= x.len() && scales.len() >= x.len() / BLOCK, "room for {} values", x.len());
    quantize_blocks(x, q.as_mut_ptr(), BLOCK, scales.as_mut_ptr(), 1);
}

/// `quantize_row`, with block `b`'s values written from `q + b · q_step` and its scale to
/// `scales + b · scale_step`.
///
/// # Safety
/// As `quantize_row`; those places must be writable for every block of `x`.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_blocks(x: &[f32], q: *mut i8, q_step: usize, scales: *mut f32, scale_step: usize) {
    for (b, xb) in x.chunks_exact(BLOCK).enumerate() {
        let xp = xb.as_ptr();
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_setzero_ps();
        for i in 0..BLOCK / 8 {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xp.add(8 * i))));
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let mut lanes = [0f32; 4];
        _mm_storeu_ps(lanes.as_mut_ptr(), m4);
        let amax = lanes[0].max(lanes[1]).max(lanes[2]).max(lanes[3]);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        *scales.add(b * scale_step) = f16::from_f32(d).to_f32();
        let id = _mm256_set1_ps(id);
        let mut quarters = [_mm256_setzero_si256(); 4];
        for (i, q) in quarters.iter_mut().enumerate() {
            *q = round_half_away(_mm256_mul_ps(_mm256_loadu_ps(xp.add(8 * i)), id));
        }
        _mm256_storeu_si256(q.add(b * q_step) as *mut __m256i, pack_bytes(quarters));
    }
}

/// `m` rows of `k` values (`xs`), each rotated in Hadamard blocks of `rotation` if asked and
/// quantized (`quantize_row`) straight into `tile_major` order for tiles of `tile_rows` rows
/// (`quantize_rows_tile_major`): the values, and the blocks' scales. The scales go row by row
/// first and are rearranged after: one tile's scales of a block share a cache line, which the
/// threads writing the tile's rows would take turns to own.
fn quantize_tile_major(
    xs: &[f32],
    (m, k): (usize, usize),
    rotation: Option<usize>,
    tile_rows: usize,
) -> (Vec<i8>, Vec<f32>) {
    let kb = k / BLOCK;
    let mut scales = vec![0f32; m * kb];
    let d = DisjointWrites(scales.as_mut_ptr());
    let xq = quantize_rows_tile_major(xs, (m, k), (BLOCK, tile_rows), |rotated, r, x, q| {
        let x = match rotation {
            Some(block) => {
                rotated.clear();
                rotated.extend_from_slice(x);
                rotated.chunks_exact_mut(block).for_each(super::rotation::hadamard_in_place);
                &rotated[..]
            }
            None => x,
        };
        // SAFETY: `q` is where the row's values go (`quantize_rows_tile_major`); its scales
        // are row r's of `scales`, which no other row writes; `supported()` held when the
        // matrix was packed.
        unsafe { quantize_blocks(x, q, tile_rows * BLOCK, d.at(r * kb), 1) }
    });
    let xd = if tile_rows == 1 { scales } else { tile_major(&scales, (m, kb, 1), tile_rows) };
    (xq, xd)
}

/// Quantizes the `m` rows of `k` values of `xs` in parallel straight into `tile_major` order
/// for tiles of `tile_rows` rows of blocks of `block` values, instead of quantizing them in
/// order and rearranging a copy (one pass over the activations where there were three):
/// `quantize(scratch, r, x, q)` quantizes row r, whose values are `x`, with its first block
/// going to `q` and each next one `tile_rows · block` bytes after the one before. Returns the
/// quantized values; the rows past `m` of the last tile are zeros. The rows are quantized in
/// parallel however few tiles there are (a tweet of 16 tokens is one AMX tile), two to a
/// task: in that order rows 2j and 2j + 1 share cache lines, so one thread writes both.
pub(super) fn quantize_rows_tile_major(
    xs: &[f32],
    (m, k): (usize, usize),
    (block, tile_rows): (usize, usize),
    quantize: impl Fn(&mut Vec<f32>, usize, &[f32], *mut i8) + Sync,
) -> Vec<i8> {
    let mut xq = vec![0i8; m.div_ceil(tile_rows) * tile_rows * k];
    let q = DisjointWrites(xq.as_mut_ptr());
    let pair = |scratch: &mut Vec<f32>, (p, rows): (usize, &[f32])| {
        for (i, x) in rows.chunks_exact(k).enumerate() {
            // Row r is row r % tile_rows of tile r / tile_rows: its block b comes `tile_rows`
            // blocks after its block b - 1 (see `tile_major`).
            let r = 2 * p + i;
            // SAFETY (of the offset): row r's first block is inside `xq`. The places the row
            // writes from there belong to it alone, so the threads write disjoint values.
            quantize(scratch, r, x, unsafe { q.at((r - r % tile_rows) * k + r % tile_rows * block) });
        }
    };
    if m < PARALLEL_ROWS {
        let mut scratch = Vec::new();
        xs.chunks(2 * k).enumerate().for_each(|rows| pair(&mut scratch, rows));
    } else {
        xs.par_chunks(2 * k).enumerate().for_each_init(Vec::new, pair);
    }
    xq
}

/// `f32::round` of each value, to i32: truncate, then step away from zero when the dropped
/// fraction is at least one half (`v - trunc(v)` is exact for the magnitudes quantization sees).
///
/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn round_half_away(v: __m256) -> __m256i {
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
pub(super) unsafe fn pack_bytes(q: [__m256i; 4]) -> __m256i {
    // The packs work within 128-bit lanes, leaving the 4-value pieces of a-d as
    // [a0 b0 c0 d0 a1 b1 c1 d1]; the permutation puts them back in order.
    let words = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// One group of 8 weight rows against up to `ROWS` activation rows.
struct Tile {
    /// The group's packed quants and scales (all blocks).
    wq: *const i8,
    ws: *const f32,
    /// Quantized activations and their scales from the tile's first row on.
    xq: *const i8,
    xd: *const f32,
    k: usize,
    out: TileOut,
}

impl ByteDotTile for Tile {
    /// The kernel, with `dot` as its inner step. The activations are unsigned in one of two
    /// ways, both exact:
    /// - `VNNI` (`vpdpbusd`, whose i32 sums cannot overflow here): they are stored as
    ///   `x + 128`, and `128 · Σ w` is taken off each block's sums. Per four values and row:
    ///   a broadcast and one instruction;
    /// - otherwise (`vpmaddubsw`, whose pair sums are i16): `|w| · (x · sign w)`, since
    ///   `2 · 255 · 127` would saturate i16 where `2 · 127 · 127` does not.
    #[inline(always)]
    unsafe fn run_with<const R: usize, const VNNI: bool>(self, dot: impl Fn(__m256i, __m256i, __m256i) -> __m256i) {
        let kb = self.k / BLOCK;
        let mut wq = self.wq.add(self.out.blocks.start * BLOCK * COLS);
        let mut ws = self.ws.add(self.out.blocks.start * COLS);
        let mut acc = self.out.start::<R>();
        let offset = _mm256_set1_epi8(-128); // the byte 0x80: 128 as unsigned
        for b in self.out.blocks.clone() {
            let mut isum = [_mm256_setzero_si256(); R];
            let mut offset_sum = _mm256_setzero_si256();
            for q in 0..BLOCK / 4 {
                // Rows 0-7 × values 4q..4q+4 of this block.
                let w = _mm256_loadu_si256(wq.add(q * 4 * COLS) as *const __m256i);
                let w_abs = if VNNI { w } else { _mm256_abs_epi8(w) };
                if VNNI {
                    offset_sum = dot(offset_sum, offset, w);
                }
                for (r, s) in isum.iter_mut().enumerate() {
                    // Activation row r, values 4q..4q+4, broadcast to all eight rows.
                    let quad = (self.xq.add(r * self.k + b * BLOCK + 4 * q) as *const i32).read_unaligned();
                    let x = _mm256_set1_epi32(quad);
                    *s = if VNNI { dot(*s, x, w) } else { dot(*s, w_abs, _mm256_sign_epi8(x, w)) };
                }
            }
            let d_w = _mm256_loadu_ps(ws);
            for (r, (a, s)) in acc.iter_mut().zip(isum).enumerate() {
                let s = if VNNI { _mm256_sub_epi32(s, offset_sum) } else { s };
                // Multiply, then add (no FMA): the browser kernel's operations, so its numbers.
                let d = _mm256_mul_ps(d_w, _mm256_set1_ps(*self.xd.add(r * kb + b)));
                *a = _mm256_add_ps(*a, _mm256_mul_ps(_mm256_cvtepi32_ps(s), d));
            }
            wq = wq.add(BLOCK * COLS);
            ws = ws.add(COLS);
        }
        self.out.finish(acc);
    }
}

/// `m` rows of `kb` blocks of `block` values each, rearranged for the tiles of `tile_rows` rows:
/// tile by tile (the last one padded with zeros), block by block, row by row. A tile's data for
/// one block is then one run of `tile_rows · block` values, each at a fixed offset from the
/// block's start: the kernels' loads need no address arithmetic, and the next block follows.
/// Against the rows as quantized (`k` values apart), this took the wide Q8_0 products at 128
/// and 2048 rows from ~50-60 to ~65-90 GMAC/s per core on the Ice Lake machine
/// (docs/benchmarks.md).
pub(super) fn tile_major<T: Copy + Default + Send + Sync>(
    rows: &[T],
    (m, kb, block): (usize, usize, usize),
    tile_rows: usize,
) -> Vec<T> {
    let row_len = kb * block;
    debug_assert_eq!(rows.len(), m * row_len);
    let tile_len = tile_rows * row_len;
    let mut tiles = vec![T::default(); m.div_ceil(tile_rows) * tile_len];
    let pack_tile = |(t, tile): (usize, &mut [T])| {
        for (r, row) in rows[t * tile_rows * row_len..].chunks(row_len).take(tile_rows).enumerate() {
            for (b, values) in row.chunks_exact(block).enumerate() {
                tile[(b * tile_rows + r) * block..][..block].copy_from_slice(values);
            }
        }
    };
    if m < PARALLEL_ROWS {
        tiles.chunks_mut(tile_len).enumerate().for_each(pack_tile);
    } else {
        tiles.par_chunks_mut(tile_len).enumerate().for_each(pack_tile);
    }
    tiles
}

/// The quantized activations as the wide tiles read them (`tile_major`, `WIDE_ROWS` rows).
struct WideActivations {
    kb: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
    /// Per block and row, `-128 · Σ x` over the block: where the block's integer sums start
    /// (see `WideTile`).
    offsets: Vec<i32>,
}

impl WideActivations {
    /// Rows of `k` values quantized in `tile_major` order for `WIDE_ROWS` rows (`quants`),
    /// with their blocks' scales (`scales`).
    fn pack(k: usize, quants: Vec<i8>, scales: Vec<f32>) -> Self {
        // Summed from the packed blocks, the offsets come in the packed order (padding gives 0).
        let block_offset = |b: &[i8]| -128 * b.iter().map(|&v| i32::from(v)).sum::<i32>();
        let offsets = if quants.len() < PARALLEL_ROWS * k {
            quants.chunks_exact(BLOCK).map(block_offset).collect()
        } else {
            quants.par_chunks_exact(BLOCK).map(block_offset).collect()
        };
        WideActivations { kb: k / BLOCK, scales, quants, offsets }
    }

    /// The tile whose first row is `row` (a multiple of `WIDE_ROWS`, as `for_each_tile` makes
    /// them): pointers to its first block.
    fn tile(&self, row: usize) -> WideTileX {
        debug_assert!(row.is_multiple_of(WIDE_ROWS));
        let at = row * self.kb;
        WideTileX {
            quants: self.quants[at * BLOCK..].as_ptr(),
            scales: self.scales[at..].as_ptr(),
            offsets: self.offsets[at..].as_ptr(),
        }
    }
}

/// One tile's part of `WideActivations`.
struct WideTileX {
    quants: *const i8,
    scales: *const f32,
    offsets: *const i32,
}

/// One group of 32 weight rows against up to `WIDE_ROWS` activation rows, on 512-bit
/// registers. `vpdpbusd` multiplies unsigned bytes by signed ones, and only the signed operand
/// can be a broadcast from memory: so the weights are the unsigned operand, stored as
/// `w + 128`, and the activations the signed one, as they are. Each block's sums are then
/// `Σ w · x + 128 · Σ x`, exact in i32; they start from `-128 · Σ x`, so they end at `Σ w · x`.
///
/// The rows are two halves of 16, each with its accumulator, and each broadcast of four
/// activations goes to both: on the Ice Lake machine (docs/benchmarks.md), a `vpdpbusd` on
/// 512-bit registers whose operand is a broadcast from memory ran at ~0.85 per cycle, against ~1.55 for one fed from a
/// register, because loads of either kind ran at ~1.1 per cycle. With one broadcast for one
/// group of 16 rows (the form before), the products waited on their loads.
struct WideTile {
    /// The group's packed quants and scales (all blocks).
    wq: *const i8,
    ws: *const f32,
    x: WideTileX,
    out: TileOut,
}

impl WideTile {
    /// # Safety
    /// The tile must have `R` activation rows and its group's weights; the CPU must have AVX2,
    /// FMA, AVX-512 F and BW and AVX-512 VNNI.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
    unsafe fn run<const R: usize>(self) {
        const H: usize = WIDE_COLS / WIDE_LANES;
        let first = self.out.blocks.start;
        let mut wq = self.wq.add(first * BLOCK * WIDE_COLS);
        let mut ws = self.ws.add(first * WIDE_COLS);
        let mut xq = self.x.quants.add(first * WIDE_ROWS * BLOCK);
        let mut xd = self.x.scales.add(first * WIDE_ROWS);
        let mut offsets = self.x.offsets.add(first * WIDE_ROWS);
        let mut acc = self.out.start_wide::<R, H>();
        for _ in self.out.blocks.clone() {
            let mut isum = [[_mm512_setzero_si512(); H]; R];
            for (r, s) in isum.iter_mut().enumerate() {
                *s = [_mm512_set1_epi32(*offsets.add(r)); H];
            }
            for q in 0..BLOCK / 4 {
                // Rows 0-15 and 16-31 × values 4q..4q+4 of this block.
                let w: [__m512i; H] = std::array::from_fn(|h| {
                    _mm512_loadu_si512(wq.add((q * WIDE_COLS + h * WIDE_LANES) * 4) as *const __m512i)
                });
                for (r, s) in isum.iter_mut().enumerate() {
                    let quad = _mm512_set1_epi32((xq.add(r * BLOCK + 4 * q) as *const i32).read_unaligned());
                    for (s, w) in s.iter_mut().zip(w) {
                        *s = _mm512_dpbusd_epi32(*s, w, quad);
                    }
                }
            }
            let d_w: [__m512; H] = std::array::from_fn(|h| _mm512_loadu_ps(ws.add(h * WIDE_LANES)));
            for (r, (a, s)) in acc.iter_mut().zip(isum).enumerate() {
                let d_x = _mm512_set1_ps(*xd.add(r));
                for ((a, s), d_w) in a.iter_mut().zip(s).zip(d_w) {
                    // The narrow kernel's operations in the same order, so its numbers.
                    *a = _mm512_add_ps(*a, _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d_w, d_x)));
                }
            }
            wq = wq.add(BLOCK * WIDE_COLS);
            ws = ws.add(WIDE_COLS);
            xq = xq.add(WIDE_ROWS * BLOCK);
            xd = xd.add(WIDE_ROWS);
            offsets = offsets.add(WIDE_ROWS);
        }
        self.out.finish_wide(acc);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::quant_blocks::BLOCK_BYTES;
    use super::*;
    use candle_core::quantized::GgmlDType;
    use candle_core::Device;

    /// A deterministic matrix of values in [-1, 1) with some large outliers, like activations.
    pub(in crate::model) fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                if i % 97 == 0 {
                    v * 20.0
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn quantizes_activations_as_candle_does() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        // Random values, an all-zero block, and a block whose products land exactly on .5
        // (d = 1: amax 127), where rounding must go away from zero as `f32::round` does.
        let mut x = values(768, 1);
        x[32..64].fill(0.0);
        let ties = [127.0f32, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49999997, -0.49999997];
        x[64..64 + ties.len()].copy_from_slice(&ties);
        // `QTensor::quantize` runs `BlockQ8_0::from_float`; 34 bytes per block (f16 scale, 32 × i8).
        let t = Tensor::from_slice(&x, (1, x.len()), &Device::Cpu).unwrap();
        let want = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap().data().unwrap().to_vec();
        let mut q = vec![0i8; x.len()];
        let mut d = vec![0f32; x.len() / 32];
        // SAFETY: `supported()` held.
        unsafe { quantize_row(&x, &mut q, &mut d) };
        for (b, blk) in want.chunks_exact(BLOCK_BYTES).enumerate() {
            assert_eq!(d[b], f16::from_le_bytes([blk[0], blk[1]]).to_f32(), "scale of block {b}");
            let got: Vec<u8> = q[b * 32..][..32].iter().map(|&v| v as u8).collect();
            assert_eq!(got, blk[2..], "block {b}");
        }
    }

    /// candle's Q8_0 product as its portable and AVX2 paths compute it (ggml's): activations
    /// quantized to Q8_0 by `BlockQ8_0::from_float`, each block's integer dot scaled by both
    /// scales. Written with dequantized operands so that it does not depend on the CPU: with
    /// AVX-512 VNNI and `k` a multiple of 256, candle 0.11 quantizes the activations to Q8K
    /// instead (one scale per 256 values), a coarser product than the kernel's and the browser's.
    fn q8_0_product(w: &Tensor, x: &Tensor) -> Tensor {
        let dequantized = |t: &Tensor| QTensor::quantize(t, GgmlDType::Q8_0).unwrap().dequantize(&Device::Cpu).unwrap();
        dequantized(x).matmul(&dequantized(w).t().unwrap()).unwrap()
    }

    /// The forms of the kernels' inner step this CPU has: each is tested.
    pub(in crate::model) fn byte_dots() -> Vec<ByteDot> {
        let forms = [ByteDot::Avx2, ByteDot::AvxVnni, ByteDot::Avx512Vnni];
        let available: Vec<ByteDot> = forms.into_iter().filter(|d| d.available()).collect();
        eprintln!("byte dot products on this CPU: {available:?}");
        available
    }

    /// The forms this CPU has for `n` weight rows: every inner step of the narrow tiles, and
    /// the wide tiles (groups of `wide_cols` rows) where the row count allows. Each is tested.
    pub(in crate::model) fn tile_forms(n: usize, wide_cols: usize) -> Vec<TileForm> {
        let mut forms: Vec<TileForm> = byte_dots().into_iter().map(TileForm::Narrow).collect();
        if !TileForm::Wide.available() {
            eprintln!("no wide form: this CPU has no AVX-512 VNNI");
        } else if n.is_multiple_of(wide_cols) {
            forms.push(TileForm::Wide);
        }
        forms
    }

    /// The matrix packed once for each form this CPU has.
    fn each_form(q: &QTensor) -> Vec<PackedQ8> {
        let blocks = Q8_0Blocks::of(q, COLS).unwrap().expect("Q8_0 with 8 | n");
        let mut forms = tile_forms(blocks.n, WIDE_COLS);
        if !TileForm::Amx.available() {
            eprintln!("no AMX form: this CPU has no AMX-INT8, or the OS does not grant it");
        } else if blocks.n.is_multiple_of(AMX_COLS) {
            forms.push(TileForm::Amx);
        }
        forms.into_iter().map(|form| PackedQ8::pack(&blocks, form)).collect()
    }

    /// Matrices sharing one prepared input give what each gives alone, bit for bit, in every
    /// form, rotated or not, for single-pass and multi-pass row counts.
    #[test]
    fn shared_input_gives_each_products_bits() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        for_shared_inputs(256, GgmlDType::Q8_0, |m, x, matrices| {
            let forms: Vec<Vec<PackedQ8>> = matrices.iter().map(|(q, _)| each_form(q)).collect();
            for f in 0..forms[0].len() {
                for rotation in [None, Some(64)] {
                    let products: Vec<(&PackedQ8, &Tensor)> =
                        forms.iter().zip(matrices).map(|(packed, (_, bias))| (&packed[f], bias)).collect();
                    let shared = PackedQ8::forward_many(&products, x, rotation).unwrap();
                    for ((w, bias), got) in products.iter().zip(shared) {
                        let alone = w.forward(x, bias, rotation).unwrap();
                        assert_eq!(bits(&got), bits(&alone), "{:?} m={m} n={} {rotation:?}", w.form, w.n);
                    }
                }
            }
        });
    }

    /// Runs `check(m, x, matrices)` for inputs `x` of 0, 5, 64 and 100 rows (none, one tile,
    /// one pass, several passes) of `k` values, and three matrices of 32, 96 and 64 rows
    /// quantized to `dtype`, each with its bias: the cases of the shared-input tests.
    pub(in crate::model) fn for_shared_inputs(
        k: usize,
        dtype: GgmlDType,
        check: impl Fn(usize, &Tensor, &[(QTensor, Tensor)]),
    ) {
        let dev = Device::Cpu;
        for m in [0, 5, 64, 100] {
            let x = Tensor::from_vec(values(m * k, 5), (m, k), &dev).unwrap();
            let matrices: Vec<(QTensor, Tensor)> = [32, 96, 64]
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let w = Tensor::from_vec(values(n * k, 20 + i as u64), (n, k), &dev).unwrap();
                    let bias = Tensor::from_vec(values(n, 30 + i as u64), n, &dev).unwrap();
                    (QTensor::quantize(&w, dtype).unwrap(), bias)
                })
                .collect();
            check(m, &x, &matrices);
        }
    }

    /// A tensor's values, to compare bit for bit.
    pub(in crate::model) fn bits(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn matches_candles_q8_0_product() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let dev = Device::Cpu;
        // Row counts around the tile and pass sizes (and each of the AMX tile's row counts:
        // 1, 2, 3-4, 5-8, 9-16); 3 rows of output stay with candle.
        let shapes = [(1, 8, 32), (1, 16, 32), (2, 48, 64), (3, 16, 800), (7, 32, 64)];
        let shapes = shapes.into_iter().chain([(53, 24, 96), (100, 64, 256), (61, 32, 800), (45, 96, 128)]);
        for (m, n, k) in shapes {
            let w = Tensor::from_vec(values(n * k, 7 + m as u64), (n, k), &dev).unwrap();
            let x = Tensor::from_vec(values(m * k, 11 + n as u64), (m, k), &dev).unwrap();
            let bias = Tensor::from_vec(values(n, 3), n, &dev).unwrap();
            let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
            let want = q8_0_product(&w, &x).broadcast_add(&bias).unwrap();
            let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let mut first: Option<Vec<f32>> = None;
            for packed in each_form(&q) {
                let dot = packed.form;
                let got = packed.forward(&x, &bias, None).unwrap();
                let diff = (&got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(
                    diff <= 1e-5 * scale.max(1.0),
                    "{dot:?} m={m} n={n} k={k}: max diff {diff} (outputs up to {scale})"
                );
                // The forms' integer sums are exact, so their outputs are the same bits.
                let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(first.get_or_insert_with(|| got.clone()), &got, "{dot:?} m={m} n={n} k={k}");
                // Rotating inside the kernel is rotating the input first.
                let rotated = crate::model::rotation::rotate_rows(&x, 32).unwrap();
                let want = packed.forward(&rotated, &bias, None).unwrap();
                let got = packed.forward(&x, &bias, Some(32)).unwrap();
                let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert_eq!(diff, 0.0, "{dot:?} m={m} n={n} k={k}: rotated in the kernel differs by {diff}");
            }
        }
        // Every weight and activation at ±127 after quantization: the largest pair sums
        // `vpmaddubsw` sees (2 · 127², which must not saturate i16).
        let (m, n, k) = (14, 32, 64);
        let signs = |len: usize, seed: usize| -> Vec<f32> {
            (0..len).map(|i| if (i * 7 + seed).is_multiple_of(3) { -1.0 } else { 1.0 }).collect()
        };
        let w = Tensor::from_vec(signs(n * k, 1), (n, k), &dev).unwrap();
        let x = Tensor::from_vec(signs(m * k, 2), (m, k), &dev).unwrap();
        let bias = Tensor::zeros(n, candle_core::DType::F32, &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let want = q8_0_product(&w, &x);
        for packed in each_form(&q) {
            let got = packed.forward(&x, &bias, None).unwrap();
            let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5 * k as f32, "{:?}, ±1 inputs: max diff {diff}", packed.form);
        }

        let w = Tensor::zeros((3, 32), candle_core::DType::F32, &dev).unwrap();
        assert!(PackedQ8::from_qtensor(&QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap().is_none());
    }
}
