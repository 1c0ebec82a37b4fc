//! Native versions of the two element-wise inference ops the browser also replaces
//! (`ops::wasm`): candle's CPU exact GELU calls its scalar `erf` one value at a time on one
//! thread, and its softmax calls libm's `expf` per value. At batch 32 × 128 tokens that is ~150
//! million erf calls per roberta-base forward.
//!
//! Same polynomials as `ops::wasm` (accurate to a few ulp, ~1e-7 relative from candle's), written
//! as plain loops the compiler vectorizes — with AVX2 and FMA where the CPU has them, 16 lanes
//! wide with AVX-512 where the products use it (`dispatch`) — and split over rayon's threads.
//! Inference only: no gradient.
//!
//! Also, natively only, LayerNorm fused with the residual addition before it
//! (`add_layer_norm`).

use crate::tensor::with_f32_slice;
use candle_core::{Result, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Values per parallel task of the GELU: large enough that splitting costs nothing.
const GELU_CHUNK: usize = 16 * 1024;

/// GELU with the exact (erf) form, `x · (1 + erf(x / √2)) / 2`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let out = with_f32_slice(&x, |v| {
        Ok(map_chunks(v, GELU_CHUNK, |c| dispatch(c, gelu_chunk, avx2::gelu_chunk, avx512::gelu_chunk)))
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let x = x.contiguous()?;
    let d = x.dim(candle_core::D::Minus1)?.max(1);
    // Whole rows per task, about GELU_CHUNK values each.
    let rows = (GELU_CHUNK / d).max(1);
    let out = with_f32_slice(&x, |v| {
        Ok(map_chunks(v, rows * d, |c| {
            c.chunks_exact_mut(d).for_each(softmax_in_place);
        }))
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
}

/// Softmax of one row, in place.
pub(crate) fn softmax_in_place(row: &mut [f32]) {
    dispatch(row, softmax_row, avx2::softmax_row, avx512::softmax_row)
}

/// A copy of `x` with `f` applied in place to each chunk of `chunk` values, the chunks on
/// rayon's threads, each copied by the thread that transforms it (a copy of the whole input
/// first, on the calling thread, was ~1 % of a forward while the other threads waited).
fn map_chunks(x: &[f32], chunk: usize, f: impl Fn(&mut [f32]) + Sync) -> Vec<f32> {
    fill_chunks(x.len(), chunk, |start, out| f(write_all(out, &x[start..])))
}

/// A vector of `len` values made chunk by chunk on rayon's threads: `f(start, chunk)` must
/// write every value of `chunk`, the values from `start` on. One chunk runs here: handing it
/// to rayon's threads would only wake them.
fn fill_chunks(len: usize, chunk: usize, f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if len <= chunk {
        f(0, spare);
    } else {
        spare.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i * chunk, c));
    }
    // SAFETY: the chunks cover `len` values, and `f` wrote each.
    unsafe { out.set_len(len) };
    out
}

/// Writes `out` from the start of `x` (at least as long), and gives it back initialized.
fn write_all<'a>(out: &'a mut [MaybeUninit<f32>], x: &[f32]) -> &'a mut [f32] {
    assert!(x.len() >= out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(v);
    }
    // SAFETY: every value was just written.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// LayerNorm over the last dimension of `a + b` (a residual connection and the norm after
/// it), row by row on rayon's threads: candle's runs a separate addition first, and sums each
/// row one value at a time (a float sum the compiler may not reorder), ~3 % of a forward.
/// Its formula (variance as E[x²] − E[x]²), with the sums in lanes.
pub fn add_layer_norm(a: &Tensor, b: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    let (a, b) = (a.contiguous()?, b.contiguous()?);
    let d = a.dim(candle_core::D::Minus1)?;
    if b.shape() != a.shape() || weight.dims1()? != d || bias.dims1()? != d || d == 0 {
        candle_core::bail!("layer norm of {:?} + {:?} with weight {:?}", a.dims(), b.dims(), weight.dims());
    }
    let (weight, bias) = (weight.contiguous()?, bias.contiguous()?);
    let rows = (GELU_CHUNK / d).max(1);
    let out = with_f32_slice(&a, |av| {
        with_f32_slice(&b, |bv| {
            with_f32_slice(&weight, |w| {
                with_f32_slice(&bias, |bias| {
                    Ok(fill_chunks(av.len(), rows * d, |start, out| {
                        for (i, row) in out.chunks_exact_mut(d).enumerate() {
                            let at = start + i * d;
                            let row = write_all(row, &av[at..at + d]);
                            for (x, &y) in row.iter_mut().zip(&bv[at..at + d]) {
                                *x += y;
                            }
                            #[cfg(target_arch = "x86_64")]
                            if crate::x86::supported() {
                                // SAFETY: the CPU has the features it was compiled for.
                                unsafe { avx2::layer_norm_row(row, w, bias, eps) };
                                continue;
                            }
                            layer_norm_row(row, w, bias, eps);
                        }
                    }))
                })
            })
        })
    })?;
    Tensor::from_vec(out, a.shape(), a.device())
}

/// Runs `plain` compiled for AVX-512 (`wide`, which LLVM vectorizes 16 lanes wide: at 1 × 128
/// the GELU and softmax were 5.4 % of a forward's samples on 8 lanes, 3.1 % on 16), for
/// AVX2 + FMA (`fast`), or as it is. AVX-512 only where the products already run on 512-bit
/// registers (the kernels' wide form, with AVX-512 VNNI), so that CPUs that lower their clock
/// for 512-bit work are not sent there by these ops alone. The loops define their lanes
/// (`LANES`), so every form gives the same bits.
#[inline(always)]
fn dispatch(v: &mut [f32], plain: fn(&mut [f32]), fast: unsafe fn(&mut [f32]), wide: unsafe fn(&mut [f32])) {
    #[cfg(target_arch = "x86_64")]
    if crate::x86::supported() {
        // SAFETY: the CPU has the features `wide` or `fast` was compiled for.
        return unsafe {
            if crate::x86::TileForm::Wide.available() {
                wide(v)
            } else {
                fast(v)
            }
        };
    }
    let _ = (fast, wide);
    plain(v)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gelu_chunk(v: &mut [f32]) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::OpsAvx2);
        super::gelu_chunk(v)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_row(v: &mut [f32]) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::OpsAvx2);
        super::softmax_row(v)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn layer_norm_row(row: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
        super::layer_norm_row(row, weight, bias, eps)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn gelu_chunk(v: &mut [f32]) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::OpsAvx512);
        super::gelu_chunk(v)
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn softmax_row(v: &mut [f32]) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::OpsAvx512);
        super::softmax_row(v)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub unsafe fn gelu_chunk(v: &mut [f32]) {
        super::gelu_chunk(v)
    }

    pub unsafe fn softmax_row(v: &mut [f32]) {
        super::softmax_row(v)
    }
}

/// Elsewhere both names are the plain loops.
#[cfg(not(target_arch = "x86_64"))]
use avx2 as avx512;

#[inline(always)]
fn gelu_chunk(v: &mut [f32]) {
    for x in v.iter_mut() {
        // The same order of operations as candle's: (erf + 1) · 0.5 · x.
        *x *= (erf(*x * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5;
    }
}

/// LayerNorm of one row in place, as candle's: `(x − mean) · (var + eps)^−½ · weight + bias`.
#[inline(always)]
fn layer_norm_row(row: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let (mut sum, mut sum2) = ([0f32; LANES], [0f32; LANES]);
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for ((s, s2), &v) in sum.iter_mut().zip(&mut sum2).zip(c) {
            *s += v;
            *s2 += v * v;
        }
    }
    for &v in chunks.remainder() {
        sum[0] += v;
        sum2[0] += v * v;
    }
    let d = row.len() as f32;
    let mean = sum.iter().sum::<f32>() / d;
    let var = sum2.iter().sum::<f32>() / d - mean * mean;
    let inv_std = (var + eps).sqrt().recip();
    for ((x, &w), &b) in row.iter_mut().zip(weight).zip(bias) {
        *x = (*x - mean) * inv_std * w + b;
    }
}

/// Lanes of the softmax's max and sum: a serial float reduction is one value at a time (the
/// compiler may not reorder it), lane-wise ones vectorize. `ops::wasm` sums in 4 lanes.
const LANES: usize = 8;

#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = if v > *m { v } else { *m };
        }
    }
    let max = chunks.remainder().iter().chain(&lanes).copied().fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let mut lanes = [0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (s, &v) in lanes.iter_mut().zip(c) {
            *s += v;
        }
    }
    let sum = lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// e^x (Cephes `expf`: x = n·ln 2 + r, |r| ≤ ln 2 / 2, e^r by a degree-6 polynomial, ~1 ulp),
/// as `ops::wasm::exp4`. Inputs below about -87.3 give 0 (the attention mask's scores among them).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-88.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    // ln 2 in two parts, so n · ln 2 is subtracted without rounding error.
    let r = x - n * 0.693_359_4;
    let r = r - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = p * r + c;
    }
    let y = p * (r * r) + r + 1.0;
    y * pow2(n)
}

/// 2^n from the exponent bits, for a whole n in -127..=127; n = -127 (x near -88) gives 0, as
/// `ops::wasm::exp4`'s does. n + 127 is read from the low bits of the float n + 127 + 2^23,
/// whose unit is 1, rather than by `n as i32`: that cast saturates and maps NaN to 0, which
/// LLVM did value by value (`vcvttss2si`, compares and `cmov`s: most of the softmax's time in
/// a profile).
#[inline(always)]
fn pow2(n: f32) -> f32 {
    f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23)
}

/// erf(x) as a rational function of x (the odd/even polynomials Eigen and XLA use for f32, a few
/// ulp), as `ops::wasm::erf4`; |x| ≥ 4 is ±1 in f32.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    for c in [2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_6e-3, -1.609_603_3e-2] {
        p = p * x2 + c;
    }
    let p = p * x;
    let mut q = -1.456_607_2e-5f32;
    for c in [-2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_473_9e-2] {
        q = q * x2 + c;
    }
    p / q
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 % 2003) as f32 - 1001.0) / 90.0).collect()
    }

    /// The largest difference beyond 1e-6 absolute + 1e-5 relative (0 when all are within):
    /// where GELU's result is tiny, `1 + erf` cancels and only an absolute bound means anything.
    fn excess_diff(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        a.iter().zip(&b).map(|(x, y)| ((x - y).abs() - 1e-6 - 1e-5 * y.abs()).max(0.0)).fold(0.0, f32::max)
    }

    #[test]
    fn gelu_matches_candles() {
        // Values from -11 to 11 in uneven steps: within one chunk (run on this thread) and over
        // more than one (on rayon's).
        for (rows, cols) in [(4, 1000), (8, 5000)] {
            let x = Tensor::from_vec(values(rows * cols), (rows, cols), &Device::Cpu).unwrap();
            let excess = excess_diff(&gelu_erf(&x).unwrap(), &x.gelu_erf().unwrap());
            assert_eq!(excess, 0.0, "{rows} × {cols}: GELU differs from candle's beyond 1e-6 + 1e-5 relative");
        }
    }

    /// LayerNorm of `a + b` in f64 with a two-pass variance: the reference both are held to.
    fn layer_norm_f64(a: &[f32], b: &[f32], weight: &[f32], bias: &[f32], eps: f64) -> Vec<f32> {
        let d = weight.len();
        let x: Vec<f64> = a.iter().zip(b).map(|(&a, &b)| a as f64 + b as f64).collect();
        x.chunks_exact(d)
            .flat_map(|row| {
                let mean = row.iter().sum::<f64>() / d as f64;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
                let inv_std = 1.0 / (var + eps).sqrt();
                row.iter()
                    .zip(weight)
                    .zip(bias)
                    .map(move |((v, &w), &b)| ((v - mean) * inv_std * w as f64 + b as f64) as f32)
            })
            .collect()
    }

    #[test]
    fn add_layer_norm_is_as_close_as_candles() {
        // Within one task (run on this thread) and over several (on rayon's), with a row length
        // that is not a multiple of the lanes, and rows whose mean is far from zero (where the
        // variance as E[x²] − E[x]² loses digits: candle's formula, kept).
        for (rows, d) in [(4, 768), (64, 768), (300, 100)] {
            let x = |seed: usize, len: usize| -> Vec<f32> {
                values(len + seed).into_iter().skip(seed).map(|v| v + seed as f32).collect()
            };
            let (a, b, w, bias) = (x(0, rows * d), x(3, rows * d), x(5, d), x(7, d));
            let want = layer_norm_f64(&a, &b, &w, &bias, 1e-5);
            let t = |v: &[f32], dims: &[usize]| Tensor::from_slice(v, dims, &Device::Cpu).unwrap();
            let (ta, tb, tw, tbias) = (t(&a, &[rows, d]), t(&b, &[rows, d]), t(&w, &[d]), t(&bias, &[d]));
            let ours = add_layer_norm(&ta, &tb, &tw, &tbias, 1e-5).unwrap();
            let candles = candle_nn::ops::layer_norm(&(&ta + &tb).unwrap(), &tw, &tbias, 1e-5).unwrap();
            let want = t(&want, &[rows, d]);
            let worst =
                |got: &Tensor| (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let (ours, candles) = (worst(&ours), worst(&candles));
            assert!(ours <= 1e-4 && candles <= 1e-4, "{rows} × {d}: ours {ours}, candle's {candles} from f64");
            assert!(ours <= 2.0 * candles + 1e-6, "{rows} × {d}: ours {ours} from f64, candle's {candles}");
            eprintln!("{rows} × {d}: largest difference from f64: ours {ours:e}, candle's {candles:e}");
        }
        let zeros = Tensor::zeros((2, 8), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones(8, DType::F32, &Device::Cpu).unwrap();
        let half = |t: &Tensor, dim| t.narrow(dim, 0, 4).unwrap();
        assert!(add_layer_norm(&zeros, &half(&zeros, 1), &w, &w, 1e-5).is_err(), "operands of different shapes");
        assert!(add_layer_norm(&zeros, &zeros, &half(&w, 0), &w, 1e-5).is_err(), "a weight of the wrong length");
    }

    /// 2^n as the browser's `exp4` builds it (`(n + 127) << 23` as an integer) for every n the
    /// clamp allows; and e^x within 2 ulp of f64's.
    #[test]
    fn exp_is_close_to_f64_and_its_powers_of_two_exact() {
        for n in -127..=127 {
            assert_eq!(pow2(n as f32).to_bits(), ((n + 127) << 23) as u32, "2^{n}");
        }
        assert_eq!(pow2(-126.0), 2f32.powi(-126));
        assert_eq!(pow2(127.0), 2f32.powi(127));
        // Every 997th float from -87 to 88 (both signs' bit patterns), and the edges.
        let mut xs = vec![-87.0f32, -0.0, 0.0, 1e-30, 88.0];
        for sign in [0u32, 0x8000_0000] {
            xs.extend((0..88f32.to_bits()).step_by(997).map(|b| f32::from_bits(b | sign)).filter(|x| *x >= -87.0));
        }
        for x in xs {
            let want = (x as f64).exp();
            let ulp = f32::from_bits((want as f32).to_bits() + 1) as f64 - (want as f32) as f64;
            assert!((exp(x) as f64 - want).abs() <= 2.0 * ulp, "exp({x}) = {}, want {want}", exp(x));
        }
        assert_eq!(exp(-100.0), 0.0, "below the clamp");
    }

    /// Each compilation of the GELU and softmax loops this CPU runs gives the plain loop's bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    pub(crate) fn every_vector_form_gives_the_plain_bits() {
        if !crate::x86::supported() {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        // 1003 values: not a multiple of any vector width, so the remainders run too; a
        // masked tail for the softmax.
        let mut x = values(1003);
        x[990..].iter_mut().for_each(|v| *v -= 1e9);
        let run = |f: &dyn Fn(&mut [f32])| {
            let mut v = x.clone();
            f(&mut v);
            v.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        let (gelu, softmax) = (run(&|v| gelu_chunk(v)), run(&|v| softmax_row(v)));
        // SAFETY: the CPU has AVX2 and FMA.
        assert_eq!(run(&|v| unsafe { avx2::gelu_chunk(v) }), gelu, "GELU, AVX2");
        // SAFETY: as above.
        assert_eq!(run(&|v| unsafe { avx2::softmax_row(v) }), softmax, "softmax, AVX2");
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("AVX-512 forms skipped: this CPU has no AVX-512 F");
            return;
        }
        // SAFETY: and AVX-512 F.
        assert_eq!(run(&|v| unsafe { avx512::gelu_chunk(v) }), gelu, "GELU, AVX-512");
        // SAFETY: as above.
        assert_eq!(run(&|v| unsafe { avx512::softmax_row(v) }), softmax, "softmax, AVX-512");
    }

    #[test]
    fn softmax_matches_candles() {
        // Rows like attention scores, one with a masked (very negative) tail; in one task (run
        // on this thread) and in several (on rayon's).
        for rows in [64, 400] {
            let mut v = values(rows * 100);
            v[..50].iter_mut().for_each(|s| *s -= 1e9);
            let x = Tensor::from_vec(v, (rows, 100), &Device::Cpu).unwrap();
            let want = candle_nn::ops::softmax_last_dim(&x).unwrap();
            let diff = (softmax_last_dim(&x).unwrap() - want).unwrap().abs().unwrap().max_all().unwrap();
            let diff = diff.to_scalar::<f32>().unwrap();
            assert!(diff < 1e-6, "{rows} rows: softmax differs from candle's by {diff}");
        }
    }
}
