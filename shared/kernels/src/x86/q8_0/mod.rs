//! `x · Wᵀ` for Q8_0 weights on x86-64 with AVX2 and FMA, replacing candle's kernels natively.
//!
//! candle's x86 Q8_0 product quantizes the activations on one thread and then, without VNNI,
//! computes every output as a separate dot product over `BlockQ8_0`s: each block of both
//! operands is loaded again for every (row, column) pair and reduced horizontally. At batch 32
//! that put a roberta-base forward behind PyTorch's fp32 (docs/benchmarks.md).
//!
//! This is the browser kernel (`wasm::q8_0`) on 256-bit registers, and gives the same numbers:
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
//! - with AMX-INT8 (Sapphire Rapids and later), the AMX form (`x86::amx`): groups of 16 weight
//!   rows as tiles of signed bytes, activations row by row, one tile product per block of 16
//!   activation rows × 16 weight rows;
//! - the products run on rayon's threads (`RAYON_NUM_THREADS`, like candle's), each taking a
//!   share of the weight rows;
//! - the work goes in passes of `PASS_ROWS` activation rows × `PASS_BLOCKS` blocks, whose
//!   quantized values stay in L1 while every weight group of the thread's share runs over them.
//!   With at most `PASS_ROWS` rows, one pass takes all blocks, so that each group's weights
//!   are read as one stream (the AMX form goes one tile of rows over all blocks at a time).
//!   `for_each_tile` does this scheduling for `x86::q4k` too;
//! - in the wide and AMX forms (and in both of `x86::q4k`'s forms), the quantized activations
//!   are laid out once per product so that each tile reads one contiguous run per block
//!   (`tile_major`); each row is quantized straight into that order
//!   (`quantize_rows_tile_major`).
//!
//! Used only where the CPU has AVX2 and FMA (checked at load); elsewhere candle's kernels stay.

mod narrow;
#[cfg(test)]
pub(crate) mod tests;
mod wide;

use super::amx::{AmxTile, AMX_COLS, AMX_ROWS};
use super::tiles::{for_each_tile, tile_major, DisjointWrites, TileOut};
use super::{
    pack_bytes, round_half_away, supported, ByteDotTile, TileForm, COLS, PARALLEL_ROWS, PASS_BLOCKS, PASS_ROWS,
    WIDE_LANES,
};
use crate::blocks::{Q8_0Blocks, BLOCK};
use crate::tensor::{packed_product, with_f32_slice};
use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};
use half::f16;
use narrow::Tile;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use wide::{WideActivations, WideTile};

/// Activation rows per tile: each loaded weight vector serves this many. 2 × ROWS
/// accumulators plus the weight, its absolute value, the broadcast and the constant ones fill
/// AVX2's 16 registers.
const ROWS: usize = 6;
/// The wide form's weight rows per group: two accumulators per activation row, so that each
/// broadcast of four activations serves 32 rows (see `WideTile`).
const WIDE_COLS: usize = 2 * WIDE_LANES;
/// The wide form's activation rows per tile: 4 × 4 accumulators (the block's integer sums and
/// the f32 sums, two of each per row), the two weight vectors, the broadcasts and the scales
/// fit AVX-512's 32 registers with room to spare. At 6 rows, which fit on paper, LLVM spilled
/// registers to the stack in the inner loop.
const WIDE_ROWS: usize = 4;

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

/// One activation row to Q8_0 exactly as candle's `BlockQ8_0::from_float`: `d = amax / 127` in
/// f32, `q = round(x · (1/d))` rounding half away from zero, `d` stored as f16 — which is the
/// value the dot product uses, so that is what `scales` gets.
///
/// # Safety
/// The CPU must have AVX2 (`supported`).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quantize_row(x: &[f32], q: &mut [i8], scales: &mut [f32]) {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        assert!(q.len() >= x.len() && scales.len() >= x.len() / BLOCK, "room for {} values", x.len());
        quantize_blocks(x, q.as_mut_ptr(), BLOCK, scales.as_mut_ptr(), 1);
    }
}

/// `quantize_row`, with block `b`'s values written from `q + b · q_step` and its scale to
/// `scales + b · scale_step`.
///
/// # Safety
/// As `quantize_row`; those places must be writable for every block of `x`.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_blocks(x: &[f32], q: *mut i8, q_step: usize, scales: *mut f32, scale_step: usize) {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
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
                rotated.chunks_exact_mut(block).for_each(crate::rotation::hadamard_in_place);
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
pub(crate) fn quantize_rows_tile_major(
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
            // SAFETY: (the offset) row r's first block is inside `xq`. The places the row
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
