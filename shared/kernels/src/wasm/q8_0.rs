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
//! In the `relaxed-simd` build (`frontend`'s `worker_relaxed`) a second inner loop,
//! `Kernel::Relaxed` (`RelaxedU8` here), is chosen at run time where it is exact: Relaxed SIMD's
//! `i32x4.relaxed_dot_i8x16_i7x16_add_s` with the weights stored as unsigned bytes `w + 128`
//! (0..=255) against the activations as they are (i8), 16 products per instruction, then
//! `Σ (w + 128)·x − 128·Σ x` per block (the activations' block sums are taken at quantization).
//! The proposal only fixes the result for a second operand within 0..=127; beyond, an engine
//! may read it signed (Arm's `sdot`) or saturate the pairwise i16 sums (x86's SSSE3 lowering).
//! V8 on a CPU with AVX-VNNI computes it with one `vpdpbusd`, unsigned × signed and exact, and
//! there it is the fastest form (with AVX-VNNI-INT8 V8 prefers `vpdpbssd`, signed × signed: not
//! this form). So `Kernel::best` takes it only when a probe of the
//! instruction (`relaxed_u8_dot_is_exact`, on values that tell the three readings apart) gives
//! the exact sums; the outputs are then bit for bit those of the simd128 loop. Weights then
//! interleave in fours (`[r0 k0..k3, r1 k0..k3, r2 .., r3 ..]`, one vector), and a pass's
//! activation rows sit side by side per four values (`RelaxedU8::quantize`), so that a step's
//! activations are one pointer plus constant offsets.
//!
//! Only compiled for wasm32 with simd128 (`.cargo/config.toml`); `x86::q8_0` is the same kernel
//! for native x86-64 with AVX2.

#[cfg(feature = "relaxed-simd")]
use super::relaxed_u8_dot_is_exact;
#[cfg(feature = "relaxed-simd")]
use super::tiles::ROWS;
use super::tiles::{for_each_tile, run_tile, Scratch, TileOut, GROUP, LANES, SCRATCH};
use super::Kernel;
use crate::blocks::{Q8_0Blocks, BLOCK};
use crate::tensor::{packed_product, zeroed};
use candle_core::quantized::QTensor;
use candle_core::{Result, Tensor};
use core::arch::wasm32::*;
use half::f16;

/// A Q8_0 matrix `[n, k]` repacked for the kernel (see the module comment).
pub struct PackedQ8 {
    n: usize,
    k: usize,
    kernel: Kernel,
    /// Per group of rows (8, or 4 for the last), per block: 32 / step steps × the group's rows ×
    /// step values (for `RelaxedU8` as `w + 128`). A group starting at row `c` starts at `c * k`.
    quants: Vec<i8>,
    /// Per group of rows, per block: their scales. A group starting at row `c` starts at
    /// `c * k / 32`.
    scales: Vec<f32>,
}

impl PackedQ8 {
    /// The packed form of a Q8_0 matrix for `Kernel::best`, or `None` when the kernel does not
    /// apply (another type, or a row count not a multiple of 4, like a 3-label head, which stays
    /// with candle).
    pub fn from_qtensor(w: &QTensor) -> Result<Option<Self>> {
        Self::for_kernel(w, Kernel::best())
    }

    /// As `from_qtensor`, for a given kernel (the tests run each); also `None` for `Relaxed`
    /// where the engine does not compute it exactly (`relaxed_u8_dot_is_exact`).
    pub fn for_kernel(w: &QTensor, kernel: Kernel) -> Result<Option<Self>> {
        let (step, offset) = match kernel {
            Kernel::Simd128 => (Simd128::STEP, 0),
            // `w + 128` as a byte: the sign bit flipped.
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed if relaxed_u8_dot_is_exact() => (RelaxedU8::STEP, i8::MIN),
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed => return Ok(None),
        };
        let Some(w) = Q8_0Blocks::of(w, LANES)? else { return Ok(None) };
        let (n, k, kb) = (w.n, w.k, w.k / BLOCK);
        let mut quants = vec![0i8; n * k];
        let mut scales = vec![0f32; n * kb];
        for row in 0..n {
            let c = row / GROUP * GROUP;
            let (width, j) = (GROUP.min(n - c), row - c);
            for b in 0..kb {
                let (scale, values) = w.block(row, b);
                scales[c * kb + b * width + j] = scale;
                // Value i of the block is value i % step of step i / step.
                let dst = c * k + b * BLOCK * width;
                for (i, v) in values.enumerate() {
                    quants[dst + i / step * step * width + j * step + i % step] = v ^ offset;
                }
            }
        }
        Ok(Some(PackedQ8 { n, k, kernel, quants, scales }))
    }

    /// `x · Wᵀ + bias` for `x` of shape `[.., k]` (f32) and `bias` `[n]` (f32).
    pub fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        packed_product(x, bias, (self.n, self.k), |m, xs, bs, out| match self.kernel {
            Kernel::Simd128 => self.matmul::<Simd128>(m, xs, bs, zeroed(out)),
            #[cfg(feature = "relaxed-simd")]
            Kernel::Relaxed => self.matmul::<RelaxedU8>(m, xs, bs, zeroed(out)),
        })
    }

    fn matmul<F: Form>(&self, m: usize, xs: &[f32], bias: &[f32], out: &mut [f32]) {
        let (n, k, kb) = (self.n, self.k, self.k / BLOCK);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let x = F::quantize(xs, (m, k), &mut s);
            for_each_tile(n, m, |c, width, r, rows| {
                let tile = Tile {
                    wq: &self.quants[c * k..][..width * k],
                    ws: &self.scales[c * kb..][..width * kb],
                    xq: &x.quants[r * k..],
                    xs: &x.scales[r * kb..],
                    xc: x.corrections.get(r * kb..).unwrap_or_default(),
                    k,
                    out: TileOut { bias: &bias[c..][..width], out: &mut *out, row0: r, col0: c, n },
                };
                // SAFETY: slice lengths are as `tile` documents: `rows` rows from `r` of
                // quantized activations and scales, `width` columns from `c` of the output.
                unsafe { run_tile!(tile, F, rows, width) }
            });
        })
    }
}

/// A product's activations as a kernel reads them: from row `r` on at `r · k` (values) and
/// `r · k / 32` (scales, corrections).
struct Activations<'a, X> {
    quants: &'a [X],
    scales: &'a [f32],
    /// Empty for the simd128 kernel.
    corrections: &'a [i32],
}

/// What differs between the two kernels: the activations' form and the integer sums of a block.
trait Form {
    /// What the tests' report of the forms that ran calls this one.
    #[cfg(feature = "tested-forms")]
    const TESTED_AS: crate::tested_forms::KernelForm;

    const STEP: usize;
    type X;

    /// The `m` rows of `k` values in `xs`, quantized (`quantize_row`) into `s`.
    fn quantize<'s>(xs: &[f32], mk: (usize, usize), s: &'s mut Scratch) -> Activations<'s, Self::X>;

    /// `BLOCK / STEP`, the steps of `block_sums`' loop, taken once per tile: a constant lets
    /// LLVM unroll the loop, an opaque value keeps it a loop in the wasm (`RelaxedU8::steps`).
    fn steps() -> usize;

    /// One block's integer sums: `[row r][vector v]` lane `i` is `Σ w·x` over the block's 32
    /// values for activation row `r` and weight row `4v + i` of the group.
    ///
    /// Each form has its own loop, though they differ only in their loads and dot: written once
    /// over per-form loads and dots (inlined with the relaxed target feature in the relaxed
    /// build), the simd128 form's tiles in `worker_relaxed` came out with other code (45 dots
    /// instead of 30 in its 8 tiles, in a whole-program LTO build), and that is the form this
    /// build runs where V8 has no AVX-VNNI.
    ///
    /// # Safety
    /// `wq` must hold the group's block `b` (`32 × 4V` values), `xq` and `xc` the activations of
    /// the `R` rows of `k` values as `quantize` lays them out.
    unsafe fn block_sums<const R: usize, const V: usize>(
        wq: *const i8,
        xq: *const Self::X,
        xc: *const i32,
        b: usize,
        k: usize,
        steps: usize,
    ) -> [[v128; V]; R];
}

struct Simd128;

impl Form for Simd128 {
    #[cfg(feature = "tested-forms")]
    const TESTED_AS: crate::tested_forms::KernelForm = crate::tested_forms::KernelForm::Q8_0Simd128;

    const STEP: usize = 2;
    type X = i16;

    fn quantize<'s>(xs: &[f32], (m, k): (usize, usize), s: &'s mut Scratch) -> Activations<'s, i16> {
        let Scratch { wide, scales, .. } = s;
        wide.clear();
        wide.resize(m * k, 0);
        scales.clear();
        scales.resize(m * k / BLOCK, 0.0);
        for ((x, q), d) in xs.chunks_exact(k).zip(wide.chunks_exact_mut(k)).zip(scales.chunks_exact_mut(k / BLOCK)) {
            quantize_row(x, q, d);
        }
        Activations { quants: wide, scales, corrections: &[] }
    }

    /// A constant (the loop as LLVM and V8 unroll it; V8 kept its sums in registers): with
    /// `RelaxedU8::steps`' opaque count the simd128 products took ~1.08× the time (Chromium,
    /// Zen 5 machine).
    #[inline(always)]
    fn steps() -> usize {
        BLOCK / Self::STEP
    }

    #[inline(always)]
    unsafe fn block_sums<const R: usize, const V: usize>(
        wq: *const i8,
        xq: *const i16,
        _xc: *const i32,
        b: usize,
        k: usize,
        steps: usize,
    ) -> [[v128; V]; R] {
        // SAFETY: the caller upholds `Form::block_sums`' conditions (`wq`, `xq` and `xc` hold the
        // block's weights and activations), which are all these loads need.
        unsafe {
            let (xq, row_stride) = (xq.add(b * BLOCK), k);
            let mut isum = [[i32x4_splat(0); V]; R];
            for p in 0..steps {
                // Rows 4v..4v+3 × values 2p, 2p+1 of this block, widened to i16.
                let w: [v128; V] =
                    core::array::from_fn(|v| i16x8_load_extend_i8x8(wq.add((p * V + v) * Self::STEP * LANES)));
                for (r, s) in isum.iter_mut().enumerate() {
                    // Activation row r, values 2p and 2p+1, broadcast to all four pairs.
                    let x = v128_load32_splat(xq.add(r * row_stride + Self::STEP * p) as *const u32);
                    for (s, w) in s.iter_mut().zip(w) {
                        *s = i32x4_add(*s, i32x4_dot_i16x8(w, x));
                    }
                }
            }
            isum
        }
    }
}

#[cfg(feature = "relaxed-simd")]
struct RelaxedU8;

#[cfg(feature = "relaxed-simd")]
impl Form for RelaxedU8 {
    #[cfg(feature = "tested-forms")]
    const TESTED_AS: crate::tested_forms::KernelForm = crate::tested_forms::KernelForm::Q8_0Relaxed;

    const STEP: usize = 4;
    type X = i8;

    /// Per row, the values of each pass (`ROWS` rows, fewer in the last) side by side per four
    /// values; per row and block `-128 · Σ x`.
    fn quantize<'s>(xs: &[f32], (m, k): (usize, usize), s: &'s mut Scratch) -> Activations<'s, i8> {
        let Scratch { wide: row, narrow, corrections, scales, .. } = s;
        let kb = k / BLOCK;
        row.resize(k, 0);
        narrow.clear();
        narrow.resize(m * k, 0);
        corrections.clear();
        corrections.resize(m * kb, 0);
        scales.clear();
        scales.resize(m * kb, 0.0);
        for (r, x) in xs.chunks_exact(k).enumerate() {
            quantize_row(x, row, &mut scales[r * kb..][..kb]);
            for (c, q) in corrections[r * kb..][..kb].iter_mut().zip(row.chunks_exact(BLOCK)) {
                *c = -128 * q.iter().map(|&v| v as i32).sum::<i32>();
            }
            let first = r / ROWS * ROWS;
            let rows = ROWS.min(m - first);
            // The pass's activations start where its first row's would in row-major order;
            // step i of the pass (four values of each row) at `i · rows · 4`.
            let pass = &mut narrow[first * k..][..rows * k];
            for (i, q) in row.chunks_exact(Self::STEP).enumerate() {
                let dst = &mut pass[(i * rows + r - first) * Self::STEP..][..Self::STEP];
                for (d, &v) in dst.iter_mut().zip(q) {
                    *d = v as i8;
                }
            }
        }
        Activations { quants: narrow, scales, corrections }
    }

    /// Opaque to LLVM, so that `block_sums` stays a loop of eight steps, each 2 weight loads,
    /// 4 broadcasts and 8 dots into the 8 integer sums. Unrolled, LLVM emitted the block's 64
    /// dots sum by sum (each sum's eight steps in a chain, the order wasm's value stack
    /// favours): V8 then kept the broadcasts and the sums in memory, ~2.4 stack loads and
    /// stores per dot (`perf`), and the products took ~1.75× the time (Chromium, Zen 5).
    #[inline(always)]
    fn steps() -> usize {
        core::hint::black_box(BLOCK / Self::STEP)
    }

    /// `Σ (w + 128)·x`, from `-128 · Σ x` on: `Σ w·x`.
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    unsafe fn block_sums<const R: usize, const V: usize>(
        wq: *const i8,
        xq: *const i8,
        xc: *const i32,
        b: usize,
        k: usize,
        steps: usize,
    ) -> [[v128; V]; R] {
        // SAFETY: the caller upholds `Form::block_sums`' conditions (`wq`, `xq` and `xc` hold the
        // block's weights and activations), which are all these loads need.
        unsafe {
            let xq = xq.add(b * BLOCK * R);
            let kb = k / BLOCK;
            let mut isum: [[v128; V]; R] = core::array::from_fn(|r| [i32x4_splat(*xc.add(r * kb + b)); V]);
            for p in 0..steps {
                // Rows 4v..4v+3 × values 4p..4p+3 of this block, as unsigned bytes.
                let w: [v128; V] =
                    core::array::from_fn(|v| v128_load(wq.add((p * V + v) * Self::STEP * LANES) as *const v128));
                for (r, s) in isum.iter_mut().enumerate() {
                    // Activation row r, values 4p..4p+3, broadcast to all four weight rows.
                    let x = v128_load32_splat(xq.add((p * R + r) * Self::STEP) as *const u32);
                    for (s, w) in s.iter_mut().zip(w) {
                        *s = i32x4_relaxed_dot_i8x16_i7x16_add(x, w, *s);
                    }
                }
            }
            isum
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
struct Tile<'a, X> {
    k: usize,
    /// The group's packed quants (all blocks) and scales.
    wq: &'a [i8],
    ws: &'a [f32],
    /// Quantized activations, their scales and (`RelaxedU8`) corrections from the tile's first
    /// row on.
    xq: &'a [X],
    xs: &'a [f32],
    xc: &'a [i32],
    out: TileOut<'a>,
}

impl<X> Tile<'_, X> {
    /// # Safety
    /// `R` rows of `k` values must be left in `xq` (and of `k / 32` in `xs`, and `xc` unless
    /// empty for the simd128 kernel), the group must have `4 * V` rows, and `out` must take `R`
    /// rows of them (`TileOut::store`).
    // Each (R, V) a function of its own: inlined into `matmul`'s dispatch, V8 made the simd128
    // products of a tweet take ~1.15× as long (Chromium, `scripts/bench-wasm-kernels.sh`).
    #[inline(never)]
    #[cfg_attr(feature = "relaxed-simd", target_feature(enable = "relaxed-simd"))]
    unsafe fn run<F: Form<X = X>, const R: usize, const V: usize>(self) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let (kb, width) = (self.k / BLOCK, LANES * V);
            debug_assert!(self.xq.len() >= R * self.k && self.xs.len() >= R * kb);
            debug_assert!(self.wq.len() == width * self.k && self.ws.len() == width * kb);
            let xq = self.xq.as_ptr();
            let xs = self.xs.as_ptr();
            let xc = self.xc.as_ptr();
            let mut wq = self.wq.as_ptr();
            let mut ws = self.ws.as_ptr();
            let mut acc = [[f32x4_splat(0.0); V]; R];
            let steps = F::steps();
            for b in 0..kb {
                let isum = F::block_sums::<R, V>(wq, xq, xc, b, self.k, steps);
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
            self.out.store(acc);
        }
    }
}
