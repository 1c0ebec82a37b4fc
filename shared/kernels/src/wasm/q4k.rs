//! `x · Wᵀ` for Q4K weights on wasm32 with simd128, replacing candle's kernel in the browser.
//!
//! candle's wasm Q4K product, like its Q8_0 one, takes every output as a separate dot product
//! and unpacks each block of both operands again for every (row, column) pair: a roberta-base
//! forward on one 32-token tweet took ~680 ms, ~4.5× the Q8_0 kernel's (`wasm::q8_0`).
//!
//! This is `wasm::q8_0`'s kernel for Q4K's layout. A Q4K block holds 256 weights as 4-bit
//! values `q` in eight sub-blocks of 32, each with a 6-bit scale `sc` and min `m`; a weight is
//! `d · sc · q − dmin · m`. So for activations `x ≈ d_x · x_q` (candle's Q8K: one scale per 256
//! values) a sub-block contributes `d · sc · d_x · Σ q · x_q − dmin · m · d_x · Σ x_q`. Here:
//! - the weights are repacked once, at load: `d` and `dmin` as f32, each sub-block's `sc` and
//!   `m` as bytes, and the values interleaved as in `wasm::q8_0` (pairs of values of 4 rows),
//!   two values to a byte: the low nibbles hold pair `p`, the high ones pair `p + 8`, so one
//!   load, an `and` and a shift give two steps' weights; the `m` of two sub-blocks side by
//!   side per row. ~0.59 bytes per weight (Q4K is 0.5625);
//! - activations are quantized once per product exactly as `BlockQ8K::from_float` does, with
//!   each sub-block's sum of values;
//! - each pass covers 4 activation rows × 8 weight rows, as in `wasm::q8_0`. Per block, the
//!   sums `Σ sc · Σ q · x_q` and `Σ m · Σ x_q` are integers, scaled once, as candle does. The
//!   second is summed in i32 (`i32x4_dot_i16x8` on two sub-blocks' `m` and `Σ x_q`) and is
//!   exact in f32 too (|Σ x_q| ≤ 32 · 128 per sub-block and m ≤ 63 keep it below 2^24). The
//!   first is summed in i32 too (`i32x4_mul` by each sub-block's `sc`), exact: |Σ q · x_q| ≤
//!   32 · 15 · 128 and sc ≤ 63 keep the block's sum below 2^25, which its conversion to f32
//!   only rounds past 2^24, with near-extreme inputs. (Summed in f32 per sub-block, as
//!   before, the relaxed products took ~1.05× the time.)
//!
//! So the numbers are candle's up to f32 rounding in the order of the sums.
//!
//! In the `relaxed-simd` build (`worker_relaxed`) a second inner loop, chosen at run time as
//! `wasm::q8_0`'s (`Kernel::best`), is `i32x4.relaxed_dot_i8x16_i7x16_add_s`: its second
//! operand must lie in 0..=127, and Q4K's values (0..=15) do, so this form is exact on every
//! engine — 16 useful multiply-adds per instruction, against 8 for `i32x4_dot_i16x8`. Values
//! then interleave in fours (the low nibbles hold four values `4p..4p+3` of 4 rows, the high
//! ones `4p + 16..`), and activations stay 8-bit. The integer sums are the same, so are the
//! outputs. The products take ~0.6× the simd128 form's time in Chromium with AVX-VNNI (12
//! layers' products at 32 rows; Intel and Zen 5 machines), but where V8 has no AVX-VNNI
//! (`--js-flags=--no-enable-avx-vnni`: three SSSE3 instructions per dot) no less: 1.04-1.1×
//! on the Intel machine, level on the Zen 5 one (90-95 ms against 89-97) since its loop stays
//! a loop (`Form::steps`). So it follows the Q8_0 kernel's probe rather than running wherever
//! it could.
//!
//! Only compiled for wasm32 with simd128.

use super::tiles::{for_each_tile, run_tile, Scratch, TileOut, GROUP, LANES, SCRATCH};
use super::Kernel;
pub use crate::blocks::quantize_row_q8k;
use crate::blocks::{Q4KBlocks, Q4K_BLOCK as BLOCK, Q4K_SUB as SUB};
use crate::tensor::{packed_product, zeroed};
use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};
use core::arch::wasm32::*;

/// A Q4K matrix `[n, k]` repacked for the kernel (see the module comment).
pub struct PackedQ4K {
    n: usize,
    k: usize,
    kernel: Kernel,
    /// Per group of rows (8, or 4 for the last), per sub-block: 16 / step steps × the group's
    /// rows × step values, two to a byte (value `i` of a step in the low nibble, `i + 16` in
    /// the high one). A group starting at row `c` starts at `c * k / 2`.
    quants: Vec<u8>,
    /// Per group of rows, per sub-block: each row's `sc`. A group starting at row `c` starts at
    /// `c * k / 32`.
    scales: Vec<u8>,
    /// Per group of rows, per block, per pair of sub-blocks, per 4 rows: each row's two `m`
    /// side by side (for `i32x4_dot_i16x8` against a pair of activation sums). A group starting
    /// at row `c` starts at `c * k / 32`.
    mins: Vec<u8>,
    /// Per group of rows, per block: each row's `d` and `dmin`. A group starting at row `c`
    /// starts at `c * k / 256`.
    d: Vec<f32>,
    dmin: Vec<f32>,
}

impl PackedQ4K {
    /// The packed form of a Q4K matrix for `Kernel::best`, or `None` when the kernel does not
    /// apply (another type, or a row count not a multiple of 4).
    pub fn from_qtensor(w: &QTensor) -> Result<Option<Self>> {
        Self::for_kernel(w, Kernel::best())
    }

    /// As `from_qtensor`, for a given kernel (the tests run each).
    pub fn for_kernel(w: &QTensor, kernel: Kernel) -> Result<Option<Self>> {
        let Some(w) = Q4KBlocks::of(w, LANES)? else { return Ok(None) };
        let step = match kernel {
            Kernel::Simd128 => Simd128::STEP,
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed => Relaxed::STEP,
        };
        let (n, k) = (w.n, w.k);
        let (kb, ks) = (k / BLOCK, k / SUB);
        let mut quants = vec![0u8; n * k / 2];
        let mut scales = vec![0u8; n * ks];
        let mut mins = vec![0u8; n * ks];
        let mut ds = vec![0f32; n * kb];
        let mut dmins = vec![0f32; n * kb];
        for row in 0..n {
            let c = row / GROUP * GROUP;
            let width = GROUP.min(n - c);
            let (v, j) = ((row - c) / LANES, (row - c) % LANES);
            for b in 0..kb {
                let block = w.block(row, b);
                ds[c * kb + b * width + row - c] = block.d;
                dmins[c * kb + b * width + row - c] = block.dmin;
                for s in 0..BLOCK / SUB {
                    let sub = b * (BLOCK / SUB) + s;
                    scales[c * ks + sub * width + row - c] = block.scales[s];
                    mins[c * ks
                        + b * (BLOCK / SUB) * width
                        + (s / 2 * (width / LANES) + v) * 2 * LANES
                        + j * 2
                        + s % 2] = block.mins[s];
                    let dst = c * k / 2 + sub * width * SUB / 2;
                    let vals = &block.values[s * SUB..][..SUB];
                    for p in 0..SUB / 2 / step {
                        for h in 0..step {
                            let lo = vals[step * p + h];
                            let hi = vals[step * p + h + SUB / 2];
                            quants[dst + (p * (width / LANES) + v) * step * LANES + j * step + h] = lo | (hi << 4);
                        }
                    }
                }
            }
        }
        Ok(Some(PackedQ4K { n, k, kernel, quants, scales, mins, d: ds, dmin: dmins }))
    }

    /// `x · Wᵀ + bias` for `x` of shape `[.., k]` (f32) and `bias` `[n]` (f32).
    pub fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        packed_product(x, bias, (self.n, self.k), |m, xs, bs, out| match self.kernel {
            Kernel::Simd128 => self.matmul::<Simd128>(m, xs, bs, zeroed(out)),
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed => self.matmul::<Relaxed>(m, xs, bs, zeroed(out)),
        })
    }

    fn matmul<F: Form>(&self, m: usize, xs: &[f32], bias: &[f32], out: &mut [f32]) {
        let (n, k, ks, kb) = (self.n, self.k, self.k / SUB, self.k / BLOCK);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let (quants, scales, sums) = F::buffers(&mut s);
            quants.clear();
            quants.resize(m * k, F::X::default());
            scales.clear();
            scales.resize(m * kb, 0.0);
            sums.clear();
            sums.resize(m * ks, 0);
            for r in 0..m {
                quantize_row_q8k(
                    &xs[r * k..][..k],
                    &mut quants[r * k..][..k],
                    &mut scales[r * kb..][..kb],
                    &mut sums[r * ks..][..ks],
                );
            }
            for_each_tile(n, m, |c, width, r, rows| {
                let tile = Tile {
                    k,
                    wq: &self.quants[c * k / 2..][..width * k / 2],
                    ws: &self.scales[c * ks..][..width * ks],
                    wm: &self.mins[c * ks..][..width * ks],
                    wd: &self.d[c * kb..][..width * kb],
                    wdmin: &self.dmin[c * kb..][..width * kb],
                    xq: &quants[r * k..],
                    xd: &scales[r * kb..],
                    xsum: &sums[r * ks..],
                    out: TileOut { bias: &bias[c..][..width], out: &mut *out, row0: r, col0: c, n },
                };
                // SAFETY: slice lengths are as `tile` documents: `rows` rows from `r` of
                // quantized activations, scales and sums, `width` columns from `c`.
                unsafe { run_tile!(tile, F, rows, width) }
            });
        })
    }
}

/// Four bytes as the four lanes of an i32x4.
///
/// # Safety
/// `p` must point at 4 readable bytes.
#[inline(always)]
unsafe fn bytes_to_i32(p: *const u8) -> v128 {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        let bytes = v128_load32_zero(p as *const u32);
        u32x4_extend_low_u16x8(u16x8_extend_low_u8x16(bytes))
    }
}

/// What differs between the two kernels: the activations' width, the weights' unpacking and
/// the dot product.
trait Form {
    /// What the tests' report of the forms that ran calls this one.
    #[cfg(feature = "tested-forms")]
    const TESTED_AS: crate::tested_forms::KernelForm;

    /// Consecutive values of one weight row side by side in a nibble plane.
    const STEP: usize;
    /// A quantized activation as the kernel reads it.
    type X: From<i8> + Copy + Default;

    /// The scratch buffers for the values, the blocks' scales and the sub-blocks' sums.
    fn buffers(s: &mut Scratch) -> (&mut Vec<Self::X>, &mut Vec<f32>, &mut Vec<i16>);

    /// The low and the high nibbles of one step's weights (4 rows × STEP values).
    ///
    /// # Safety
    /// `p` must point at the step's bytes.
    unsafe fn nibbles(p: *const u8) -> (v128, v128);

    /// `sum` plus the two steps' dot products of weights and broadcast activations.
    fn dot_add(sum: v128, lo: (v128, v128), hi: (v128, v128)) -> v128;

    /// `SUB / 2 / STEP`, the steps of `sub_block_sums`' loop, taken once per tile: a constant
    /// lets LLVM unroll the loop, an opaque value keeps it a loop in the wasm (as
    /// `wasm::q8_0`'s `RelaxedU8::steps`).
    fn steps() -> usize;
}

struct Simd128;

impl Form for Simd128 {
    #[cfg(feature = "tested-forms")]
    const TESTED_AS: crate::tested_forms::KernelForm = crate::tested_forms::KernelForm::Q4KSimd128;

    /// A pair, for `i32x4_dot_i16x8`.
    const STEP: usize = 2;
    type X = i16;

    fn buffers(s: &mut Scratch) -> (&mut Vec<i16>, &mut Vec<f32>, &mut Vec<i16>) {
        (&mut s.wide, &mut s.scales, &mut s.sums)
    }

    /// Widened to i16.
    #[inline(always)]
    unsafe fn nibbles(p: *const u8) -> (v128, v128) {
        // SAFETY: the caller upholds `Form::nibbles`'s condition (`p` points at the step's bytes), which is all these loads need.
        unsafe {
            let raw = i16x8_load_extend_u8x8(p);
            (v128_and(raw, i16x8_splat(0x0F)), u16x8_shr(raw, 4))
        }
    }

    #[inline(always)]
    fn dot_add(sum: v128, (lo, x_lo): (v128, v128), (hi, x_hi): (v128, v128)) -> v128 {
        i32x4_add(sum, i32x4_add(i32x4_dot_i16x8(lo, x_lo), i32x4_dot_i16x8(hi, x_hi)))
    }

    #[inline(always)]
    fn steps() -> usize {
        SUB / 2 / Self::STEP
    }
}

#[cfg(feature = "relaxed-simd")]
struct Relaxed;

#[cfg(feature = "relaxed-simd")]
impl Form for Relaxed {
    #[cfg(feature = "tested-forms")]
    const TESTED_AS: crate::tested_forms::KernelForm = crate::tested_forms::KernelForm::Q4KRelaxed;

    /// Four, for the relaxed 8-bit dot.
    const STEP: usize = 4;
    type X = i8;

    fn buffers(s: &mut Scratch) -> (&mut Vec<i8>, &mut Vec<f32>, &mut Vec<i16>) {
        (&mut s.narrow, &mut s.scales, &mut s.sums)
    }

    /// As bytes.
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    unsafe fn nibbles(p: *const u8) -> (v128, v128) {
        // SAFETY: the caller upholds `Form::nibbles`'s condition (`p` points at the step's bytes), which is all these loads need.
        unsafe {
            let raw = v128_load(p as *const v128);
            let nibble = u8x16_splat(0x0F);
            // A 16-bit shift and the same mask: `u8x16_shr` would be both with a mask of its own.
            (v128_and(raw, nibble), v128_and(u16x8_shr(raw, 4), nibble))
        }
    }

    /// The activations (signed) against the values (0..=15, within the second operand's
    /// 0..=127).
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    fn dot_add(sum: v128, (lo, x_lo): (v128, v128), (hi, x_hi): (v128, v128)) -> v128 {
        i32x4_relaxed_dot_i8x16_i7x16_add(x_hi, hi, i32x4_relaxed_dot_i8x16_i7x16_add(x_lo, lo, sum))
    }

    /// Opaque, as `wasm::q8_0`'s `RelaxedU8::steps`.
    #[inline(always)]
    fn steps() -> usize {
        core::hint::black_box(SUB / 2 / Self::STEP)
    }
}

/// One group of weight rows against up to `ROWS` activation rows.
struct Tile<'a, X> {
    k: usize,
    /// The group's packed values (all sub-blocks), `sc`, `m`, `d` and `dmin`.
    wq: &'a [u8],
    ws: &'a [u8],
    wm: &'a [u8],
    wd: &'a [f32],
    wdmin: &'a [f32],
    /// Quantized activations, their blocks' scales and their sub-blocks' sums, from the
    /// tile's first row on.
    xq: &'a [X],
    xd: &'a [f32],
    xsum: &'a [i16],
    out: TileOut<'a>,
}

impl<X> Tile<'_, X> {
    /// # Safety
    /// `R` rows of `k` values must be left in `xq` (of `k / 256` in `xd`, of `k / 32` in
    /// `xsum`), the group must have `4 * V` rows, and `out` must take `R` rows of them
    /// (`TileOut::store`).
    #[cfg_attr(not(feature = "relaxed-simd"), inline(always))]
    #[cfg_attr(feature = "relaxed-simd", target_feature(enable = "relaxed-simd"))]
    unsafe fn run<F: Form<X = X>, const R: usize, const V: usize>(self) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let (kb, width) = (self.k / BLOCK, LANES * V);
            debug_assert!(self.xq.len() >= R * self.k && self.xd.len() >= R * kb && self.xsum.len() >= R * kb * 8);
            debug_assert!(self.wq.len() == width * self.k / 2 && self.wd.len() == width * kb);
            let ks = self.k / SUB;
            let (xq, xd, xsum) = (self.xq.as_ptr(), self.xd.as_ptr(), self.xsum.as_ptr());
            let (mut wq, mut ws, mut wm) = (self.wq.as_ptr(), self.ws.as_ptr(), self.wm.as_ptr());
            let mut acc = [[f32x4_splat(0.0); V]; R];
            let steps = F::steps();
            for b in 0..kb {
                // Σ sc · Σ q · x_q of this block, in i32 (see the module comment).
                let scaled = block_sums::<F, R, V>(wq, ws, xq.add(b * BLOCK), self.k, steps);
                wq = wq.add(BLOCK / 2 * width);
                ws = ws.add(BLOCK / SUB * width);
                // Σ m · Σ x_q of this block, in i32 (exact: below 8 · 63 · 32 · 128), a pair of
                // sub-blocks per dot. In f32 per sub-block, as before, the products took 1.07× the
                // time.
                let mut mins = [[i32x4_splat(0); V]; R];
                for p in 0..BLOCK / SUB / 2 {
                    let m: [v128; V] =
                        core::array::from_fn(|v| i16x8_load_extend_u8x8(wm.add((p * V + v) * 2 * LANES)));
                    for (r, mins) in mins.iter_mut().enumerate() {
                        let x_sums = v128_load32_splat(xsum.add(r * ks + b * (BLOCK / SUB) + 2 * p) as *const u32);
                        for (sum, m) in mins.iter_mut().zip(m) {
                            *sum = i32x4_add(*sum, i32x4_dot_i16x8(m, x_sums));
                        }
                    }
                }
                wm = wm.add(BLOCK / SUB * width);
                // As candle: d_x · d · Σ sc · Σ q · x_q − d_x · dmin · Σ m · Σ x_q.
                for r in 0..R {
                    let d_x = f32x4_splat(*xd.add(r * kb + b));
                    for v in 0..V {
                        let d = f32x4_mul(v128_load(self.wd.as_ptr().add(b * width + v * LANES) as *const v128), d_x);
                        let dmin =
                            f32x4_mul(v128_load(self.wdmin.as_ptr().add(b * width + v * LANES) as *const v128), d_x);
                        acc[r][v] = f32x4_add(
                            acc[r][v],
                            f32x4_sub(
                                f32x4_mul(d, f32x4_convert_i32x4(scaled[r][v])),
                                f32x4_mul(dmin, f32x4_convert_i32x4(mins[r][v])),
                            ),
                        );
                    }
                }
            }
            self.out.store(acc);
        }
    }
}

/// One block's `Σ sc · Σ q · x_q`: `[row r][vector v]` lane `i` for activation row `r` and
/// weight row `4v + i` of the group.
///
/// A function of its own, called once per block. Called once per sub-block (the sums returned
/// through memory, V8 saving the caller's sums around each call), the relaxed products took
/// ~1.15× the time, and with the sub-block sums inlined into `Tile::run` longer still
/// (Chromium, Zen 5 machine). The simd128 form's time is the same either way.
///
/// # Safety
/// `wq` and `ws` must hold the group's block (`128 × 4V` bytes, `8 × 4V` scales), `xq` `R`
/// rows of its 256 activations, `row_stride` apart.
#[inline(never)]
#[cfg_attr(feature = "relaxed-simd", target_feature(enable = "relaxed-simd"))]
unsafe fn block_sums<F: Form, const R: usize, const V: usize>(
    wq: *const u8,
    ws: *const u8,
    xq: *const F::X,
    row_stride: usize,
    steps: usize,
) -> [[v128; V]; R] {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        let width = LANES * V;
        let mut scaled = [[i32x4_splat(0); V]; R];
        for s in 0..BLOCK / SUB {
            let isum = sub_block_sums::<F, R, V>(wq.add(s * SUB / 2 * width), xq.add(s * SUB), row_stride, steps);
            let sc: [v128; V] = core::array::from_fn(|v| bytes_to_i32(ws.add(s * width + v * LANES)));
            for r in 0..R {
                for v in 0..V {
                    scaled[r][v] = i32x4_add(scaled[r][v], i32x4_mul(isum[r][v], sc[v]));
                }
            }
        }
        scaled
    }
}

/// One sub-block's integer sums: `[row r][vector v]` lane `i` is `Σ q · x_q` over its 32
/// values for activation row `r` and weight row `4v + i` of the group.
///
/// # Safety
/// `wq` must hold the group's sub-block (`16 × 4V` bytes), `xq` `R` rows of its 32
/// activations, `row_stride` apart.
#[inline(always)]
unsafe fn sub_block_sums<F: Form, const R: usize, const V: usize>(
    wq: *const u8,
    xq: *const F::X,
    row_stride: usize,
    steps: usize,
) -> [[v128; V]; R] {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        let mut isum = [[i32x4_splat(0); V]; R];
        for p in 0..steps {
            // Rows 4v..4v+3 × step p of this sub-block: its low nibbles, then step p + 16 / STEP
            // in its high ones.
            let (lo, hi): ([v128; V], [v128; V]) = {
                let both: [(v128, v128); V] =
                    core::array::from_fn(|v| F::nibbles(wq.add((p * V + v) * F::STEP * LANES)));
                (both.map(|b| b.0), both.map(|b| b.1))
            };
            for (r, sums) in isum.iter_mut().enumerate() {
                let x = xq.add(r * row_stride + F::STEP * p);
                let x_lo = v128_load32_splat(x as *const u32);
                let x_hi = v128_load32_splat(x.add(SUB / 2) as *const u32);
                for (sum, (lo, hi)) in sums.iter_mut().zip(lo.iter().zip(&hi)) {
                    *sum = F::dot_add(*sum, (*lo, x_lo), (*hi, x_hi));
                }
            }
        }
        isum
    }
}
