//! `x · Wᵀ` for Q8_0 weights on wasm32 with simd128, replacing candle's kernel in the browser.
//!
//! candle's wasm path computes every output as a separate dot product over `BlockQ8_0`s: each
//! block of both operands is loaded and sign-extended again for every (row, column) pair, and
//! both f16 scales are converted in software each time. That made a roberta-base forward on one
//! 32-token tweet take ~410 ms, 90 % of it in these products.
//!
//! Here the numbers are the same as candle's up to float summation order — each activation row
//! is quantized to Q8_0 blocks exactly as `BlockQ8_0::from_float` does, the integer dot of each
//! block is exact, then scaled by `d_w · d_x` and summed in f32 — but:
//! - the weights are repacked once, at load, for the inner loop: rows interleaved in pairs of
//!   values (`[r0 k0, r0 k1, r1 k0, r1 k1, r2 k0, r2 k1, r3 k0, r3 k1]`, 8 bytes per 4 rows), so
//!   one `i32x4_dot_i16x8` against a broadcast pair of activations gives four output columns,
//!   and the f16 scales are converted to f32 once. The packed matrix is 36 bytes per 32 weights
//!   (Q8_0 is 34) and replaces the `QTensor`, so the weights are never held twice.
//! - activations are quantized once per product and kept sign-extended to i16;
//! - each pass covers `ROWS` activation rows × 8 weight rows (register blocking): each
//!   extended weight vector serves `ROWS` rows, each broadcast activation pair two weight
//!   vectors, and the accumulators' lanes are the output columns themselves: no horizontal sums.
//!
//! With the `relaxed-simd-q8` feature the inner loop is `i32x4.relaxed_dot_i8x16_i7x16_add_s`
//! instead: 16 8-bit products summed into the accumulator in one instruction (`vpdpbusd` in V8
//! where the CPU has AVX-VNNI). No worker build has it yet: without AVX-VNNI V8 spends three
//! SSSE3 instructions per such dot, and this form then takes ~1.9× the simd128 time, so it is
//! only worth shipping once the worker can tell the two apart at run time. Its second operand must lie in 0..=127 for the result to be the
//! same on every engine, so each activation `x` goes in as its two halves `max(x, 0)` and
//! `max(-x, 0)`, the second against the negated weights: the block's integer sum is exactly
//! `Σ w·x` again, and the outputs are bit for bit those of the simd128 form. The split spends
//! half of each instruction's products on zeros — 8 useful multiply-adds per instruction, as
//! `i32x4_dot_i16x8` — so what it saves is the widening and the separate adds: with AVX-VNNI
//! the products take ~0.8× the simd128 form's time in Chromium (README, "Relaxed SIMD").
//! Weights then interleave in fours (`[r0 k0..k3, r1 k0..k3, r2 .., r3 ..]`, one vector), and
//! a pass's activation rows sit side by side per four values (`quantize_activations`).
//!
//! Only compiled for wasm32 with simd128 (`.cargo/config.toml`); `x86_matmul` is the same kernel
//! for native x86-64 with AVX2.

use super::layers::{packed_product, zeroed};
use super::quant_blocks::{Q8_0Blocks, BLOCK};
use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};
use core::arch::wasm32::*;
use half::f16;
use std::cell::RefCell;

/// Weight rows per i32x4 accumulator: its four lanes.
const LANES: usize = 4;
/// Consecutive values of one weight row side by side in the packed matrix: a pair for
/// `i32x4_dot_i16x8`, four for the relaxed 8-bit dot.
#[cfg(not(feature = "relaxed-simd-q8"))]
const STEP: usize = 2;
#[cfg(feature = "relaxed-simd-q8")]
const STEP: usize = 4;
/// What the kernel reads per activation value: the value widened to i16, or (relaxed) its two
/// 7-bit halves.
#[cfg(not(feature = "relaxed-simd-q8"))]
type Activation = i16;
#[cfg(feature = "relaxed-simd-q8")]
type Activation = u8;
#[cfg(not(feature = "relaxed-simd-q8"))]
const PER_VALUE: usize = 1;
#[cfg(feature = "relaxed-simd-q8")]
const PER_VALUE: usize = 2;
/// Weight rows per pass (a group): two accumulators per activation row. A 4-row group at the
/// end takes the rest when the row count is 4 more than a multiple of 8.
const GROUP: usize = 8;
/// Activation rows per pass. The 2 × ROWS integer sums, two weight vectors and a broadcast stay
/// within the 16 vector registers V8 has on x86-64. Per 64 products that is 2 weight loads, 4
/// broadcasts, 8 dots and 8 adds, against 1 + 6 + 6 + 6 per 48 for 4 weight rows × 6 activation
/// rows: 15-20 % faster on roberta-base's shapes, in a Chromium worker and under node (Zen 3; a
/// one-off micro-benchmark). 5 rows spill; 3 rows, or 12 or 16 weight rows, were no faster.
const ROWS: usize = 4;

/// A Q8_0 matrix `[n, k]` repacked for the kernel (see the module comment).
pub struct PackedQ8 {
    n: usize,
    k: usize,
    /// Per group of rows (8, or 4 for the last), per block: 32 / STEP steps × the group's rows ×
    /// STEP values. A group starting at row `c` starts at `c * k`.
    quants: Vec<i8>,
    /// Per group of rows, per block: their scales. A group starting at row `c` starts at
    /// `c * k / 32`.
    scales: Vec<f32>,
}

impl PackedQ8 {
    /// The packed form of a Q8_0 matrix, or `None` when the kernel does not apply (another
    /// type, or a row count not a multiple of 4, like a 3-label head, which stays with candle;
    /// for the relaxed form also a weight of -128, which has no negation in i8 — candle's own
    /// quantization never makes one).
    pub fn from_qtensor(w: &QTensor) -> Result<Option<Self>> {
        let Some(w) = Q8_0Blocks::of(w, LANES)? else { return Ok(None) };
        let (n, k, kb) = (w.n, w.k, w.k / BLOCK);
        let mut quants = vec![0i8; n * k];
        let mut scales = vec![0f32; n * kb];
        for row in 0..n {
            let c = row / GROUP * GROUP;
            let (width, j) = (group_width(n, c), row - c);
            for b in 0..kb {
                let (scale, values) = w.block(row, b);
                scales[c * kb + b * width + j] = scale;
                // Value i of the block is value i % STEP of step i / STEP.
                let dst = c * k + b * BLOCK * width;
                for (i, v) in values.enumerate() {
                    if cfg!(feature = "relaxed-simd-q8") && v == i8::MIN {
                        return Ok(None);
                    }
                    quants[dst + i / STEP * STEP * width + j * STEP + i % STEP] = v;
                }
            }
        }
        Ok(Some(PackedQ8 { n, k, quants, scales }))
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `x · Wᵀ + bias` for `x` of shape `[.., k]` (f32) and `bias` `[n]` (f32).
    pub fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        packed_product(x, bias, (self.n, self.k), |m, xs, bs, out| self.matmul(m, xs, bs, zeroed(out)))
    }

    fn matmul(&self, m: usize, xs: &[f32], bias: &[f32], out: &mut [f32]) {
        let (n, k, kb) = (self.n, self.k, self.k / BLOCK);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let Scratch { quants, scales, row } = &mut *s;
            quants.clear();
            quants.resize(m * k * PER_VALUE, 0);
            scales.clear();
            scales.resize(m * kb, 0.0);
            for r in 0..m {
                quantize_activations(&xs[r * k..][..k], row, quants, (r, m), &mut scales[r * kb..][..kb]);
            }
            for c in (0..n).step_by(GROUP) {
                let width = group_width(n, c);
                let wq = &self.quants[c * k..][..width * k];
                let ws = &self.scales[c * kb..][..width * kb];
                let bias = &bias[c..][..width];
                let mut r = 0;
                while r < m {
                    let rows = ROWS.min(m - r);
                    let tile = Tile {
                        wq,
                        ws,
                        bias,
                        xq: &quants[r * k * PER_VALUE..],
                        xs: &scales[r * kb..],
                        k,
                        out: &mut *out,
                        row0: r,
                        col0: c,
                        n,
                    };
                    // SAFETY: slice lengths are as `tile` documents: `rows` rows from `r` of
                    // quantized activations and scales, `width` columns from `c` of the output.
                    unsafe {
                        match (rows, width) {
                            (4, GROUP) => tile.run::<4, 2>(),
                            (3, GROUP) => tile.run::<3, 2>(),
                            (2, GROUP) => tile.run::<2, 2>(),
                            (_, GROUP) => tile.run::<1, 2>(),
                            (4, _) => tile.run::<4, 1>(),
                            (3, _) => tile.run::<3, 1>(),
                            (2, _) => tile.run::<2, 1>(),
                            _ => tile.run::<1, 1>(),
                        }
                    }
                    r += rows;
                }
            }
        })
    }
}

/// Rows in the group that starts at weight row `c`: 8, or 4 for a last group of 4.
fn group_width(n: usize, c: usize) -> usize {
    GROUP.min(n - c)
}

/// Quantized activations of one product, reused across calls (wasm memory never shrinks, so
/// a fresh buffer per call would only add allocator work).
struct Scratch {
    quants: Vec<Activation>,
    scales: Vec<f32>,
    /// One row's values, before the relaxed kernel's split (unused by the simd128 one).
    row: Vec<i16>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> =
        const { RefCell::new(Scratch { quants: Vec::new(), scales: Vec::new(), row: Vec::new() }) };
}

/// Activation row `r` of `m` quantized (`quantize_row`) as the kernel reads it: as it is, at
/// `r · k`.
#[cfg(not(feature = "relaxed-simd-q8"))]
fn quantize_activations(x: &[f32], _row: &mut Vec<i16>, out: &mut [i16], (r, _m): (usize, usize), scales: &mut [f32]) {
    quantize_row(x, &mut out[r * x.len()..][..x.len()], scales);
}

/// Activation row `r` of `m` quantized (`quantize_row`, into `row`) as the relaxed kernel
/// reads it: per four values, `max(x, 0)` of each, then `max(-x, 0)` of each — all within
/// 0..=127, as the relaxed dot's second operand must be — and the rows of each pass (`ROWS`,
/// fewer in the last) side by side per four values, so that a step's activations are one
/// pointer plus constant offsets (with the split in SIMD: per tweet 0.85-0.90× ONNX Runtime
/// Web's time over six runs, against 0.90-0.91× in two with rows apart and a scalar split).
#[cfg(feature = "relaxed-simd-q8")]
fn quantize_activations(x: &[f32], row: &mut Vec<i16>, out: &mut [u8], (r, m): (usize, usize), scales: &mut [f32]) {
    let k = x.len();
    row.resize(k, 0);
    quantize_row(x, row, scales);
    let first = r / ROWS * ROWS;
    let rows = ROWS.min(m - first);
    // The pass's activations start where its first row's would in row-major order.
    let out = &mut out[first * k * PER_VALUE..][..rows * k * PER_VALUE];
    let step = rows * 2 * STEP;
    let dst = out[(r - first) * 2 * STEP..].as_mut_ptr();
    for (i, q) in row.chunks_exact(16).enumerate() {
        // SAFETY: 16 values in `q`; the four steps of 8 bytes written are within `out`: steps
        // 4i..4i+3 of the pass, `step` bytes each, at this row's place in them.
        unsafe {
            let q =
                i8x16_narrow_i16x8(v128_load(q.as_ptr() as *const v128), v128_load(q.as_ptr().add(8) as *const v128));
            let pos = i8x16_max(q, i8x16_splat(0));
            let neg = i8x16_max(i8x16_neg(q), i8x16_splat(0));
            let lo = i8x16_shuffle::<0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23>(pos, neg);
            let hi = i8x16_shuffle::<8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31>(pos, neg);
            let d = dst.add(4 * i * step);
            v128_store64_lane::<0>(lo, d as *mut u64);
            v128_store64_lane::<1>(lo, d.add(step) as *mut u64);
            v128_store64_lane::<0>(hi, d.add(2 * step) as *mut u64);
            v128_store64_lane::<1>(hi, d.add(3 * step) as *mut u64);
        }
    }
}

/// One activation row to Q8_0 exactly as candle's `BlockQ8_0::from_float` (non-NEON path):
/// `d = amax / 127` in f32, `q = round(x · (1/d))` rounding half away from zero, `d` stored as
/// f16 — which is the value the dot product uses, so that is what `scales` gets. The values are
/// kept widened to i16 for `i32x4_dot_i16x8`. Public for the tests that hold it to candle's.
pub fn quantize_row(x: &[f32], q: &mut [i16], scales: &mut [f32]) {
    for ((xb, qb), d_out) in x.chunks_exact(BLOCK).zip(q.chunks_exact_mut(BLOCK)).zip(scales.iter_mut()) {
        // SAFETY: `xb` and `qb` have BLOCK (32) elements; unaligned v128 loads/stores are allowed.
        unsafe {
            let xp = xb.as_ptr() as *const v128;
            let mut m = f32x4_splat(0.0);
            for i in 0..BLOCK / 4 {
                m = f32x4_max(m, f32x4_abs(v128_load(xp.add(i))));
            }
            let amax = f32x4_extract_lane::<0>(m)
                .max(f32x4_extract_lane::<1>(m))
                .max(f32x4_extract_lane::<2>(m))
                .max(f32x4_extract_lane::<3>(m));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            *d_out = f16::from_f32(d).to_f32();
            let id = f32x4_splat(id);
            let half = f32x4_splat(0.5);
            let one = f32x4_splat(1.0);
            let sign = u32x4_splat(0x8000_0000);
            let qp = qb.as_mut_ptr() as *mut v128;
            for i in 0..BLOCK / 8 {
                let mut halves = [i32x4_splat(0); 2];
                for (h, out) in halves.iter_mut().enumerate() {
                    let v = f32x4_mul(v128_load(xp.add(2 * i + h)), id);
                    // f32::round: truncate, then step away from zero when the dropped fraction
                    // is at least one half (v - trunc(v) is exact for these magnitudes).
                    let t = f32x4_trunc(v);
                    let away = f32x4_ge(f32x4_abs(f32x4_sub(v, t)), half);
                    let step = v128_and(away, v128_or(one, v128_and(v, sign)));
                    *out = i32x4_trunc_sat_f32x4(f32x4_add(t, step));
                }
                v128_store(qp.add(i), i16x8_narrow_i32x4(halves[0], halves[1]));
            }
        }
    }
}

/// One group of weight rows against up to `ROWS` activation rows.
struct Tile<'a> {
    /// The group's packed quants (all blocks) and scales.
    wq: &'a [i8],
    ws: &'a [f32],
    bias: &'a [f32],
    /// Quantized activations (`PER_VALUE` per value) and their scales from the tile's first row
    /// on.
    xq: &'a [Activation],
    xs: &'a [f32],
    k: usize,
    out: &'a mut [f32],
    row0: usize,
    col0: usize,
    n: usize,
}

impl Tile<'_> {
    /// # Safety
    /// `R` rows of `k` values must be left in `xq` (and of `k / 32` in `xs`), the group must
    /// have `4 * V` rows, and the output must hold rows `row0..row0 + R` of `n` values.
    #[cfg_attr(not(feature = "relaxed-simd-q8"), inline(always))]
    #[cfg_attr(feature = "relaxed-simd-q8", target_feature(enable = "relaxed-simd"))]
    unsafe fn run<const R: usize, const V: usize>(self) {
        let (kb, width) = (self.k / BLOCK, LANES * V);
        debug_assert!(self.xq.len() >= R * self.k * PER_VALUE && self.xs.len() >= R * kb);
        debug_assert!(self.wq.len() == width * self.k && self.ws.len() == width * kb);
        debug_assert!(self.out.len() >= (self.row0 + R) * self.n && self.col0 + width <= self.n);
        let xq = self.xq.as_ptr();
        let xs = self.xs.as_ptr();
        let mut wq = self.wq.as_ptr();
        let mut ws = self.ws.as_ptr();
        let mut acc = [[f32x4_splat(0.0); V]; R];
        for b in 0..kb {
            let isum = block_sums::<R, V>(wq, xq, b, self.k);
            for (r, (a, s)) in acc.iter_mut().zip(isum).enumerate() {
                let d_x = f32x4_splat(*xs.add(r * kb + b));
                for (v, (a, s)) in a.iter_mut().zip(s).enumerate() {
                    let d = f32x4_mul(v128_load(ws.add(v * LANES) as *const v128), d_x);
                    *a = f32x4_add(*a, f32x4_mul(f32x4_convert_i32x4(s), d));
                }
            }
            wq = wq.add(BLOCK * width);
            ws = ws.add(width);
        }
        for (r, a) in acc.into_iter().enumerate() {
            for (v, a) in a.into_iter().enumerate() {
                let bias = v128_load(self.bias.as_ptr().add(v * LANES) as *const v128);
                let dst = self.out.as_mut_ptr().add((self.row0 + r) * self.n + self.col0 + v * LANES);
                v128_store(dst as *mut v128, f32x4_add(a, bias));
            }
        }
    }
}

/// One block's integer sums: `[row r][vector v]` lane `i` is `Σ w·x` over the block's 32 values
/// for activation row `r` and weight row `4v + i` of the group.
///
/// # Safety
/// `wq` must hold the group's block `b` (`32 × 4V` values), `xq` the activations of the `R`
/// rows of `k` values.
#[cfg(not(feature = "relaxed-simd-q8"))]
#[inline(always)]
unsafe fn block_sums<const R: usize, const V: usize>(
    wq: *const i8,
    xq: *const i16,
    b: usize,
    k: usize,
) -> [[v128; V]; R] {
    let (xq, row_stride) = (xq.add(b * BLOCK), k);
    let mut isum = [[i32x4_splat(0); V]; R];
    for p in 0..BLOCK / STEP {
        // Rows 4v..4v+3 × values 2p, 2p+1 of this block, widened to i16.
        let w: [v128; V] = core::array::from_fn(|v| i16x8_load_extend_i8x8(wq.add((p * V + v) * STEP * LANES)));
        for (r, s) in isum.iter_mut().enumerate() {
            // Activation row r, values 2p and 2p+1, broadcast to all four pairs.
            let x = v128_load32_splat(xq.add(r * row_stride + STEP * p) as *const u32);
            for (s, w) in s.iter_mut().zip(w) {
                *s = i32x4_add(*s, i32x4_dot_i16x8(w, x));
            }
        }
    }
    isum
}

/// As above, with the relaxed 8-bit dot: `Σ w·x = Σ w·max(x, 0) + Σ (-w)·max(-x, 0)`, each
/// term's second operand within 0..=127 (see the module comment).
///
/// # Safety
/// As above; `xq` holds the pass's activations as the relaxed `quantize_activations` lays them
/// out.
#[cfg(feature = "relaxed-simd-q8")]
#[inline]
#[target_feature(enable = "relaxed-simd")]
unsafe fn block_sums<const R: usize, const V: usize>(
    wq: *const i8,
    xq: *const u8,
    b: usize,
    _k: usize,
) -> [[v128; V]; R] {
    let xq = xq.add(b * BLOCK * PER_VALUE * R);
    let mut isum = [[i32x4_splat(0); V]; R];
    for p in 0..BLOCK / STEP {
        // Rows 4v..4v+3 × values 4p..4p+3 of this block, and their negations.
        let w: [v128; V] = core::array::from_fn(|v| v128_load(wq.add((p * V + v) * STEP * LANES) as *const v128));
        let neg_w = w.map(|w| i8x16_neg(w));
        for (r, s) in isum.iter_mut().enumerate() {
            // Activation row r, values 4p..4p+3 (their positive, then negative halves),
            // broadcast to all four weight rows.
            let x = xq.add((p * R + r) * 2 * STEP);
            let pos = v128_load32_splat(x as *const u32);
            for (s, w) in s.iter_mut().zip(w) {
                *s = i32x4_relaxed_dot_i8x16_i7x16_add(w, pos, *s);
            }
            let neg = v128_load32_splat(x.add(STEP) as *const u32);
            for (s, w) in s.iter_mut().zip(neg_w) {
                *s = i32x4_relaxed_dot_i8x16_i7x16_add(w, neg, *s);
            }
        }
    }
    isum
}
