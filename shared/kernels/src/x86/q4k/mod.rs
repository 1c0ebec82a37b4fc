//! `x · Wᵀ` for Q4K weights on x86-64 with AVX2 and FMA, replacing candle's kernel natively.
//!
//! candle's x86 Q4K product, like its Q8_0 one, takes every output as a separate dot product:
//! the activations' blocks are loaded again for every weight row, and each dot ends in a
//! horizontal sum. This is `x86::q8_0`'s tiling for Q4K's layout, the native counterpart of
//! `wasm::q4k` (see there for the arithmetic). A sub-block of 32 weights contributes
//! `d · sc · d_x · Σ q · x_q − dmin · m · d_x · Σ x_q`, and here:
//! - the 4-bit values `q` are unsigned, so they go to `vpmaddubsw` as they are (no sign
//!   trick, as the Q8_0 kernel needs): 32 products per instruction, into pair sums of at most
//!   2 · 15 · 128 in magnitude. The eight pair sums of a sub-block's 32 values add up in i16
//!   (≤ 30,720, exact), and one `vpmaddwd` against the rows' scales `sc` both widens them and
//!   scales them: per 32 products, one multiply and one add, against the Q8_0 kernel's two
//!   multiplies and two other operations. On CPUs with VNNI, `vpdpbusd` adds the products
//!   into i32 four at a time instead, and one `vpmulld` per sub-block scales them: the same
//!   exact sums, in 0.84-0.94× the forward's time on the Intel machine (docs/benchmarks.md);
//! - with AVX-512 VNNI (and BW), the wide form (`Tile::run_wide`) does the same on 512-bit
//!   registers: groups of 16 weight rows, tiles of 8 activation rows, and the activations'
//!   broadcasts folded into `vpdpbusd` as memory operands (`{1to16}`);
//! - the weights are repacked once, at load: eight rows interleaved in groups of four values,
//!   as in `x86::q8_0`, two values to a byte (the low nibbles hold group `p` of a sub-block,
//!   the high ones group `p + 4`), so one load, two `and`s and a shift give two groups; the
//!   scales (twice) and mins as bytes, `d` and `dmin` as f32: 0.625 bytes per weight (Q4K is
//!   0.5625);
//! - activations are quantized once per product (once for a layer's query, key and value
//!   together: `forward_many`) exactly as `BlockQ8K::from_float` does, on all threads, with
//!   each sub-block's sum `Σ x_q` for the mins;
//! - per block, `Σ sc · Σ q · x_q` and `Σ m · Σ x_q` are exact i32 sums (at most 8 · 63 ·
//!   61,440 and 8 · 63 · 4,096), converted to f32 and scaled once, as candle does.
//!
//! So the numbers are candle's up to f32 rounding in the order of the sums. Used only where
//! the CPU has AVX2 and FMA (checked at load); elsewhere candle's kernel stays.

use super::q8_0::quantize_rows_tile_major;
use super::tiles::{for_each_tile, tile_major, DisjointWrites, TileOut};
use super::{pack_bytes, round_half_away, supported, ByteDotTile, TileForm, PASS_ROWS, WIDE_LANES};
use crate::blocks::{Q4KBlocks, Q4K_BLOCK as BLOCK, Q4K_SUB as SUB};
use crate::tensor::{packed_product, with_f32_slice};
use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Weight rows interleaved together: the eight lanes of one accumulator.
const COLS: usize = 8;
/// Sub-blocks per block.
const SUBS: usize = BLOCK / SUB;
/// Activation rows per tile. Per row, the sub-block's i16 sums, the block's i32 sums and the
/// f32 sums: 3 × 4 registers, plus the weights' two halves, the nibble mask and a broadcast.
const ROWS: usize = 4;
/// Blocks of 256 values per pass: a pass's activations (48 × 256 bytes) stay in L1.
const PASS_BLOCKS: usize = 1;
/// Weight rows per group in the wide form: the lanes of one 512-bit accumulator.
const WIDE_COLS: usize = WIDE_LANES;
/// Activation rows per tile in the wide form: 3 × 8 registers, and the same six others, fit
/// AVX-512's 32.
const WIDE_ROWS: usize = 8;

/// A Q4K matrix `[n, k]` repacked for the kernel (see the module comment).
pub struct PackedQ4K {
    n: usize,
    k: usize,
    /// Per group of `form.cols(WIDE_COLS)` rows, per sub-block: 4 × (the rows × 4 values), two values to
    /// a byte.
    quants: Vec<u8>,
    /// Per group, per sub-block: each row's `sc`, twice (the two i16 lanes of its pair sums).
    scales: Vec<u8>,
    /// Per group, per block, per pair of sub-blocks `(2t, 2t + 1)`: each row's two mins.
    mins: Vec<u8>,
    /// Per group, per block: the rows' `d` and `dmin`.
    d: Vec<f32>,
    dmin: Vec<f32>,
    form: TileForm,
}

impl PackedQ4K {
    /// The packed form of a Q4K matrix, or `None` when the kernel does not apply (no AVX2,
    /// another type, or a row count not a multiple of 8, like a 3-label head).
    pub fn from_qtensor(w: &QTensor) -> Result<Option<Self>> {
        if !supported() {
            return Ok(None);
        }
        let Some(blocks) = Q4KBlocks::of(w, COLS)? else { return Ok(None) };
        Ok(Some(Self::pack(&blocks, TileForm::detect(blocks.n, WIDE_COLS))))
    }

    /// `w` packed for `form`, whose group size must divide its rows.
    fn pack(w: &Q4KBlocks, form: TileForm) -> Self {
        let (n, k, kb, cols) = (w.n, w.k, w.k / BLOCK, form.cols(WIDE_COLS));
        assert!(n.is_multiple_of(cols), "{n} rows in groups of {cols}");
        let mut quants = vec![0u8; n * k / 2];
        let mut scales = vec![0u8; n * kb * SUBS * 2];
        let mut mins = vec![0u8; n * kb * SUBS];
        let mut d = vec![0f32; n * kb];
        let mut dmin = vec![0f32; n * kb];
        for row in 0..n {
            let (g, j) = (row / cols, row % cols);
            for b in 0..kb {
                let block = w.block(row, b);
                let gb = g * kb + b;
                d[gb * cols + j] = block.d;
                dmin[gb * cols + j] = block.dmin;
                for s in 0..SUBS {
                    let sub = gb * SUBS + s;
                    scales[sub * 2 * cols + 2 * j..][..2].fill(block.scales[s]);
                    mins[(gb * SUBS / 2 + s / 2) * 2 * cols + 2 * j + s % 2] = block.mins[s];
                    let values = &block.values[s * SUB..][..SUB];
                    for p in 0..SUB / 8 {
                        for i in 0..4 {
                            let (lo, hi) = (values[4 * p + i], values[4 * (p + 4) + i]);
                            quants[sub * SUB * cols / 2 + p * 4 * cols + j * 4 + i] = lo | (hi << 4);
                        }
                    }
                }
            }
        }
        PackedQ4K { n, k, quants, scales, mins, d, dmin, form }
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `x · Wᵀ + bias` for `x` of shape `[.., k]` (f32) and `bias` `[n]` (f32).
    pub fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        packed_product(x, bias, (self.n, self.k), |m, xs, bs, out| self.matmul(m, xs, bs, out))
    }

    /// The products of several matrices with the same input `x`, quantizing it once for all of
    /// them (a layer's query, key and value projections), as `x86::q8_0::PackedQ8::forward_many`.
    /// The matrices must share their input (`shares_input`).
    pub fn forward_many(products: &[(&PackedQ4K, &Tensor)], x: &Tensor) -> Result<Vec<Tensor>> {
        let Some(((first, _), rest)) = products.split_first() else { return Ok(vec![]) };
        if rest.iter().any(|(w, _)| !first.shares_input(w)) {
            candle_core::bail!("matrices of different input widths or forms cannot share their input");
        }
        let x = x.contiguous()?;
        let features = x.dim(candle_core::D::Minus1)?;
        if features != first.k {
            candle_core::bail!("matmul: input has {features} features, the weight {}", first.k);
        }
        let prepared = with_f32_slice(&x, |xs| Ok(first.prepare(xs.len() / first.k, xs)))?;
        let multiply = |(w, bias): &(&PackedQ4K, &Tensor)| {
            packed_product(&x, bias, (w.n, w.k), |_, _, bs, out| w.multiply(&prepared, bs, out))
        };
        products.iter().map(multiply).collect()
    }

    /// Whether `other` can read the input prepared for this matrix (`forward_many`).
    pub fn shares_input(&self, other: &PackedQ4K) -> bool {
        self.k == other.k && self.form == other.form
    }

    fn matmul(&self, m: usize, xs: &[f32], bias: &[f32], out: &mut [MaybeUninit<f32>]) {
        self.multiply(&self.prepare(m, xs), bias, out);
    }

    /// `m` rows of `xs` quantized to Q8K, with their sub-block sums, and arranged tile by tile
    /// as this matrix's form reads them: the values straight into that order
    /// (`quantize_rows_tile_major`), the scales and sums (a few bytes per row and block, which
    /// the rows of a tile would share cache lines for) row by row, then rearranged.
    fn prepare(&self, m: usize, xs: &[f32]) -> PreparedQ8K {
        let (k, kb, ks, tile_rows) = (self.k, self.k / BLOCK, self.k / SUB, self.tile_rows());
        let mut xd = vec![0f32; m * kb];
        let mut xsum = vec![0i16; m * ks];
        let (d, sums) = (DisjointWrites(xd.as_mut_ptr()), DisjointWrites(xsum.as_mut_ptr()));
        let xq = quantize_rows_tile_major(xs, (m, k), (BLOCK, tile_rows), |_, r, x, q| {
            // SAFETY: `q` is where the row's values go (`quantize_rows_tile_major`); its scales
            // and sums are row r's, which no other row writes; `supported()` held when this
            // matrix was packed.
            unsafe { quantize_blocks_q8k(x, q, tile_rows * BLOCK, d.at(r * kb), sums.at(r * ks)) }
        });
        PreparedQ8K {
            m,
            k,
            form: self.form,
            xq,
            xd: tile_major(&xd, (m, kb, 1), tile_rows),
            xsum: tile_major(&xsum, (m, kb, SUBS), tile_rows),
        }
    }

    fn tile_rows(&self) -> usize {
        if self.form == TileForm::Wide {
            WIDE_ROWS
        } else {
            ROWS
        }
    }

    /// The product of the prepared input `x` with this matrix, plus `bias`, into `out`.
    fn multiply(&self, x: &PreparedQ8K, bias: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert!(x.k == self.k && x.form == self.form, "an input prepared for another matrix");
        let (m, n, k, kb, ks) = (x.m, self.n, self.k, self.k / BLOCK, self.k / SUB);
        if m == 0 {
            return;
        }
        let (cols, tile_rows) = (self.form.cols(WIDE_COLS), self.tile_rows());
        let PreparedQ8K { xq, xd, xsum, .. } = x;
        for_each_tile((m, n), kb, bias, out, (cols, PASS_ROWS, PASS_BLOCKS, tile_rows), |g, r, rows, out| {
            // Tiles start at multiples of `tile_rows`, where `tile_major` starts them, `r · k`
            // values in.
            debug_assert!(r.is_multiple_of(tile_rows));
            let tile = Tile {
                wq: self.quants[g * k / 2 * cols..].as_ptr(),
                ws: self.scales[g * ks * 2 * cols..].as_ptr(),
                wm: self.mins[g * ks * cols..].as_ptr(),
                wd: self.d[g * kb * cols..].as_ptr(),
                wdmin: self.dmin[g * kb * cols..].as_ptr(),
                xq: xq[r * k..].as_ptr(),
                xd: xd[r * kb..].as_ptr(),
                xsum: xsum[r * ks..].as_ptr(),
                out,
            };
            // SAFETY: `rows` activation rows from `r` exist; `out` is the tile's (see
            // `for_each_tile`); AVX2, FMA and the form's features were checked when the matrix
            // was packed.
            unsafe {
                match (self.form, rows) {
                    (TileForm::Wide, 8) => tile.run_wide::<8>(),
                    (TileForm::Wide, 7) => tile.run_wide::<7>(),
                    (TileForm::Wide, 6) => tile.run_wide::<6>(),
                    (TileForm::Wide, 5) => tile.run_wide::<5>(),
                    (TileForm::Wide, 4) => tile.run_wide::<4>(),
                    (TileForm::Wide, 3) => tile.run_wide::<3>(),
                    (TileForm::Wide, 2) => tile.run_wide::<2>(),
                    (TileForm::Wide, _) => tile.run_wide::<1>(),
                    (TileForm::Narrow(dot), 4) => dot.run::<4, _>(tile),
                    (TileForm::Narrow(dot), 3) => dot.run::<3, _>(tile),
                    (TileForm::Narrow(dot), 2) => dot.run::<2, _>(tile),
                    (TileForm::Narrow(dot), _) => dot.run::<1, _>(tile),
                    (TileForm::Amx, _) => unreachable!("Q4K has no AMX form"),
                }
            }
        });
    }
}

/// A product's input as `PackedQ4K::prepare` leaves it, for the matrices that share it: Q8K
/// values, scales and sub-block sums, each in `tile_major` order.
pub struct PreparedQ8K {
    m: usize,
    k: usize,
    form: TileForm,
    xq: Vec<i8>,
    xd: Vec<f32>,
    xsum: Vec<i16>,
}

/// `quantize_blocks_q8k` into one row's slices.
///
/// # Safety
/// The CPU must have AVX2 (`supported`).
#[cfg(test)]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_row_q8k(x: &[f32], q: &mut [i8], scales: &mut [f32], sums: &mut [i16]) {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        let kb = x.len() / BLOCK;
        assert!(q.len() >= x.len() && scales.len() >= kb && sums.len() >= kb * SUBS, "room for {} values", x.len());
        quantize_blocks_q8k(x, q.as_mut_ptr(), BLOCK, scales.as_mut_ptr(), sums.as_mut_ptr());
    }
}

/// One activation row to Q8K: `blocks::quantize_row_q8k` (candle's
/// `BlockQ8K::from_float`) on AVX2, with the same results (in the scalar form it took a sixth
/// of a batch-32 forward). Block `b`'s values go from `q + b · q_step`, its scale to
/// `scales + b` and its sub-blocks' sums from `sums + b · SUBS`.
///
/// # Safety
/// The CPU must have AVX2 (`supported`); those places must be writable for every block of `x`.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_blocks_q8k(x: &[f32], q: *mut i8, q_step: usize, scales: *mut f32, sums: *mut i16) {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        for (b, xb) in x.chunks_exact(BLOCK).enumerate() {
            let (qb, d_out, sb) = (q.add(b * q_step), scales.add(b), sums.add(b * SUBS));
            let xp = xb.as_ptr();
            let mut m = _mm256_setzero_ps();
            for i in 0..BLOCK / 8 {
                m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xp.add(8 * i))));
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), m);
            let amax = lanes.iter().fold(0f32, |a, &b| a.max(b));
            if amax == 0.0 {
                qb.write_bytes(0, BLOCK);
                *d_out = 0.0;
                sb.write_bytes(0, SUBS);
                continue;
            }
            // The first value of that magnitude gives the sign, as in the scalar form.
            let amax_v = _mm256_set1_ps(amax);
            let mut max = amax;
            for i in 0..BLOCK / 8 {
                let v = _mm256_loadu_ps(xp.add(8 * i));
                let hits = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_andnot_ps(sign, v), amax_v));
                if hits != 0 {
                    max = xb[8 * i + hits.trailing_zeros() as usize];
                    break;
                }
            }
            let iscale = -127f32 / max;
            *d_out = 1.0 / iscale;
            let iscale = _mm256_set1_ps(iscale);
            let ones = _mm256_set1_epi8(1);
            for s in 0..SUBS {
                let mut quarters = [_mm256_setzero_si256(); 4];
                for (i, q) in quarters.iter_mut().enumerate() {
                    *q = round_half_away(_mm256_mul_ps(iscale, _mm256_loadu_ps(xp.add(s * SUB + 8 * i))));
                }
                let bytes = pack_bytes(quarters);
                _mm256_storeu_si256(qb.add(s * SUB) as *mut __m256i, bytes);
                let words = _mm256_madd_epi16(_mm256_maddubs_epi16(ones, bytes), _mm256_set1_epi16(1));
                let mut parts = [0i32; 8];
                _mm256_storeu_si256(parts.as_mut_ptr() as *mut __m256i, words);
                *sb.add(s) = parts.iter().sum::<i32>() as i16;
            }
        }
    }
}

/// One group of 8 weight rows against up to `ROWS` activation rows.
struct Tile {
    /// The group's packed values, scales and mins (all blocks), `d` and `dmin`.
    wq: *const u8,
    ws: *const u8,
    wm: *const u8,
    wd: *const f32,
    wdmin: *const f32,
    /// Quantized activations, their blocks' scales and their sub-blocks' sums, from the
    /// tile's first block on, in `tile_major` order for the form's tile rows.
    xq: *const i8,
    xd: *const f32,
    xsum: *const i16,
    out: TileOut,
}

impl ByteDotTile for Tile {
    #[cfg(any(test, feature = "tested-forms"))]
    const FORMS: [crate::tested_forms::KernelForm; 3] = {
        use crate::tested_forms::KernelForm::*;
        [Q4KAvx2, Q4KAvxVnni, Q4KAvx512Vnni]
    };

    /// The kernel. A sub-block's products add up exactly either way:
    /// - `VNNI`: `dot` (`vpdpbusd`) adds them four at a time into i32, which are then
    ///   multiplied by the rows' `sc` (`vpmulld`, once per sub-block);
    /// - otherwise: `vpmaddubsw` pair sums add up in i16 (at most 30,720), and one `vpmaddwd`
    ///   against `sc` widens and scales them (`dot`, which would widen each step, is unused).
    ///
    /// # Safety
    /// A whole tile of `ROWS` rows (`tile_major`) must be readable from `xq`, `xd` and `xsum`,
    /// 8 columns of `R` rows writable at `out`; see `ByteDotTile`.
    #[inline(always)]
    unsafe fn run_with<const R: usize, const VNNI: bool>(self, dot: impl Fn(__m256i, __m256i, __m256i) -> __m256i) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            const T: usize = ROWS;
            let mut acc = self.out.start::<R>();
            let nibble = _mm256_set1_epi8(0x0F);
            for b in self.out.blocks.clone() {
                let mut scaled = [_mm256_setzero_si256(); R];
                for s in b * SUBS..(b + 1) * SUBS {
                    let wq = self.wq.add(s * SUB * COLS / 2);
                    let mut pairs = [_mm256_setzero_si256(); R];
                    for p in 0..SUB / 8 {
                        // Rows 0-7 × values 4p..4p+4 (low nibbles) and 4p+16..4p+20 (high).
                        let w = _mm256_loadu_si256(wq.add(p * 4 * COLS) as *const __m256i);
                        let lo = _mm256_and_si256(w, nibble);
                        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(w), nibble);
                        for (r, sum) in pairs.iter_mut().enumerate() {
                            let x = self.xq.add((b * T + r) * BLOCK + (s % SUBS) * SUB + 4 * p);
                            let x_lo = _mm256_set1_epi32((x as *const i32).read_unaligned());
                            let x_hi = _mm256_set1_epi32((x.add(SUB / 2) as *const i32).read_unaligned());
                            *sum = if VNNI {
                                dot(dot(*sum, lo, x_lo), hi, x_hi)
                            } else {
                                let both =
                                    _mm256_add_epi16(_mm256_maddubs_epi16(lo, x_lo), _mm256_maddubs_epi16(hi, x_hi));
                                _mm256_add_epi16(*sum, both)
                            };
                        }
                    }
                    // Each row's `sc` twice, as two i16 lanes; as one i32 lane when masked.
                    let sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(self.ws.add(s * 2 * COLS) as *const __m128i));
                    for (total, sum) in scaled.iter_mut().zip(pairs) {
                        let sum = if VNNI {
                            _mm256_mullo_epi32(sum, _mm256_and_si256(sc, _mm256_set1_epi32(0xFFFF)))
                        } else {
                            _mm256_madd_epi16(sum, sc)
                        };
                        *total = _mm256_add_epi32(*total, sum);
                    }
                }
                let d = _mm256_loadu_ps(self.wd.add(b * COLS));
                let dmin = _mm256_loadu_ps(self.wdmin.add(b * COLS));
                for (r, (a, scaled)) in acc.iter_mut().zip(scaled).enumerate() {
                    // Σ m · Σ x_q, two sub-blocks per `vpmaddwd`.
                    let mut mins = _mm256_setzero_si256();
                    for t in 0..SUBS / 2 {
                        let m = _mm256_cvtepu8_epi16(_mm_loadu_si128(
                            self.wm.add((b * SUBS / 2 + t) * 2 * COLS) as *const __m128i
                        ));
                        let sums = (self.xsum.add((b * T + r) * SUBS + 2 * t) as *const i32).read_unaligned();
                        mins = _mm256_add_epi32(mins, _mm256_madd_epi16(m, _mm256_set1_epi32(sums)));
                    }
                    // As candle: d_x · d · Σ sc · Σ q · x_q − d_x · dmin · Σ m · Σ x_q.
                    let d_x = _mm256_set1_ps(*self.xd.add(b * T + r));
                    let plus = _mm256_mul_ps(_mm256_mul_ps(d, d_x), _mm256_cvtepi32_ps(scaled));
                    let minus = _mm256_mul_ps(_mm256_mul_ps(dmin, d_x), _mm256_cvtepi32_ps(mins));
                    *a = _mm256_add_ps(*a, _mm256_sub_ps(plus, minus));
                }
            }
            self.out.finish(acc);
        }
    }
}

impl Tile {
    /// `run_with`'s VNNI form on 512-bit registers, for a group of 16 weight rows (the wide
    /// packing). The weights are already `vpdpbusd`'s unsigned operand, so each broadcast of
    /// activations folds into it as a memory operand.
    ///
    /// # Safety
    /// As `run_with`, with 16 columns and tiles of `WIDE_ROWS` rows; the CPU must have AVX2,
    /// FMA, AVX-512 F and BW and AVX-512 VNNI.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
    unsafe fn run_wide<const R: usize>(self) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::Q4KWide);
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            const C: usize = WIDE_COLS;
            const T: usize = WIDE_ROWS;
            let mut acc = self.out.start_wide::<R, 1>().map(|[a]| a);
            let nibble = _mm512_set1_epi8(0x0F);
            let low_words = _mm512_set1_epi32(0xFFFF);
            for b in self.out.blocks.clone() {
                let mut scaled = [_mm512_setzero_si512(); R];
                for s in b * SUBS..(b + 1) * SUBS {
                    let wq = self.wq.add(s * SUB * C / 2);
                    let mut sums = [_mm512_setzero_si512(); R];
                    for p in 0..SUB / 8 {
                        // Rows 0-15 × values 4p..4p+4 (low nibbles) and 4p+16..4p+20 (high).
                        let w = _mm512_loadu_si512(wq.add(p * 4 * C) as *const __m512i);
                        let lo = _mm512_and_si512(w, nibble);
                        let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(w), nibble);
                        for (r, sum) in sums.iter_mut().enumerate() {
                            let x = self.xq.add((b * T + r) * BLOCK + (s % SUBS) * SUB + 4 * p);
                            let x_lo = _mm512_set1_epi32((x as *const i32).read_unaligned());
                            let x_hi = _mm512_set1_epi32((x.add(SUB / 2) as *const i32).read_unaligned());
                            *sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(*sum, lo, x_lo), hi, x_hi);
                        }
                    }
                    // Each row's `sc` (stored twice, as for the i16 lanes of the narrow AVX2 form).
                    let sc = _mm512_cvtepu8_epi16(_mm256_loadu_si256(self.ws.add(s * 2 * C) as *const __m256i));
                    let sc = _mm512_and_si512(sc, low_words);
                    for (total, sum) in scaled.iter_mut().zip(sums) {
                        *total = _mm512_add_epi32(*total, _mm512_mullo_epi32(sum, sc));
                    }
                }
                let d = _mm512_loadu_ps(self.wd.add(b * C));
                let dmin = _mm512_loadu_ps(self.wdmin.add(b * C));
                for (r, (a, scaled)) in acc.iter_mut().zip(scaled).enumerate() {
                    let mut mins = _mm512_setzero_si512();
                    for t in 0..SUBS / 2 {
                        let m = _mm512_cvtepu8_epi16(_mm256_loadu_si256(
                            self.wm.add((b * SUBS / 2 + t) * 2 * C) as *const __m256i
                        ));
                        let sums = (self.xsum.add((b * T + r) * SUBS + 2 * t) as *const i32).read_unaligned();
                        mins = _mm512_add_epi32(mins, _mm512_madd_epi16(m, _mm512_set1_epi32(sums)));
                    }
                    // `run_with`'s operations in the same order, so its numbers.
                    let d_x = _mm512_set1_ps(*self.xd.add(b * T + r));
                    let plus = _mm512_mul_ps(_mm512_mul_ps(d, d_x), _mm512_cvtepi32_ps(scaled));
                    let minus = _mm512_mul_ps(_mm512_mul_ps(dmin, d_x), _mm512_cvtepi32_ps(mins));
                    *a = _mm512_add_ps(*a, _mm512_sub_ps(plus, minus));
                }
            }
            self.out.finish_wide(acc.map(|a| [a]));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
