//! candle's quantized matrices read block by block, for the kernels that repack them at load
//! (`wasm::q8_0`, `wasm::q4k`, `x86::q8_0`, `x86::q4k`), and the Q8K quantization of
//! activations that the Q4K kernels share.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;
use half::f16;
use std::borrow::Cow;

/// Values per Q8_0 block.
pub const BLOCK: usize = 32;
/// Bytes of one Q8_0 block in candle's layout: f16 scale, then 32 × i8.
pub const BLOCK_BYTES: usize = 34;

/// Values per Q4K block (and per Q8K activation block).
pub const Q4K_BLOCK: usize = 256;
/// Values per Q4K sub-block: one scale and one min each.
pub const Q4K_SUB: usize = 32;
/// Bytes of one Q4K block in candle's layout: f16 d, f16 dmin, 12 bytes of 6-bit scales and
/// mins, 128 bytes of 4-bit values.
const Q4K_BLOCK_BYTES: usize = 144;

/// A quantized matrix `[n, k]`: its shape and its bytes as candle stores them.
struct MatrixBytes<'a> {
    n: usize,
    k: usize,
    data: Cow<'a, [u8]>,
}

/// `w` when it is a `dtype` matrix `[n, k]` of whole blocks whose row count is a non-zero
/// multiple of `rows_multiple` (a kernel's row grouping); `None` otherwise.
fn matrix_bytes(w: &QTensor, dtype: GgmlDType, rows_multiple: usize) -> Result<Option<MatrixBytes<'_>>> {
    let (n, k) = match w.shape().dims() {
        &[n, k] => (n, k),
        _ => return Ok(None),
    };
    if w.dtype() != dtype || n % rows_multiple != 0 || k % dtype.block_size() != 0 || n == 0 {
        return Ok(None);
    }
    let data = w.data()?;
    if data.len() != n * (k / dtype.block_size()) * dtype.type_size() {
        candle_core::bail!("{dtype:?} tensor of {} bytes for shape [{n}, {k}]", data.len());
    }
    Ok(Some(MatrixBytes { n, k, data }))
}

/// A Q8_0 matrix `[n, k]`, its bytes as candle stores them.
pub struct Q8_0Blocks<'a> {
    pub n: usize,
    pub k: usize,
    data: Cow<'a, [u8]>,
}

impl<'a> Q8_0Blocks<'a> {
    /// The blocks of `w`, or `None` when it is not a Q8_0 matrix of whole blocks whose row count
    /// is a non-zero multiple of `rows_multiple`.
    pub fn of(w: &'a QTensor, rows_multiple: usize) -> Result<Option<Self>> {
        Ok(matrix_bytes(w, GgmlDType::Q8_0, rows_multiple)?.map(|MatrixBytes { n, k, data }| Q8_0Blocks { n, k, data }))
    }

    /// Block `b` of row `row`: its scale (stored as f16) and its 32 values.
    pub fn block(&self, row: usize, b: usize) -> (f32, impl Iterator<Item = i8> + '_) {
        let src = &self.data[(row * (self.k / BLOCK) + b) * BLOCK_BYTES..][..BLOCK_BYTES];
        (f16::from_le_bytes([src[0], src[1]]).to_f32(), src[2..].iter().map(|&v| v as i8))
    }
}

/// A Q4K matrix `[n, k]`, its bytes as candle stores them.
pub struct Q4KBlocks<'a> {
    pub n: usize,
    pub k: usize,
    data: Cow<'a, [u8]>,
}

/// One Q4K block unpacked: weight `i` is `d · scales[i / 32] · values[i] − dmin · mins[i / 32]`.
pub struct Q4KBlock {
    pub d: f32,
    pub dmin: f32,
    /// Per sub-block: the 6-bit scale and min.
    pub scales: [u8; Q4K_BLOCK / Q4K_SUB],
    pub mins: [u8; Q4K_BLOCK / Q4K_SUB],
    /// The 4-bit values, in order.
    pub values: [u8; Q4K_BLOCK],
}

impl<'a> Q4KBlocks<'a> {
    /// The blocks of `w`, or `None` when it is not a Q4K matrix of whole blocks whose row count
    /// is a non-zero multiple of `rows_multiple`.
    pub fn of(w: &'a QTensor, rows_multiple: usize) -> Result<Option<Self>> {
        Ok(matrix_bytes(w, GgmlDType::Q4K, rows_multiple)?.map(|MatrixBytes { n, k, data }| Q4KBlocks { n, k, data }))
    }

    /// Block `b` of row `row`, unpacked as candle's `BlockQ4K::to_float` reads it.
    pub fn block(&self, row: usize, b: usize) -> Q4KBlock {
        let src = &self.data[(row * (self.k / Q4K_BLOCK) + b) * Q4K_BLOCK_BYTES..][..Q4K_BLOCK_BYTES];
        let packed: &[u8; 12] = src[4..16].try_into().expect("12 bytes");
        let mut block = Q4KBlock {
            d: f16::from_le_bytes([src[0], src[1]]).to_f32(),
            dmin: f16::from_le_bytes([src[2], src[3]]).to_f32(),
            scales: [0; Q4K_BLOCK / Q4K_SUB],
            mins: [0; Q4K_BLOCK / Q4K_SUB],
            values: [0; Q4K_BLOCK],
        };
        for s in 0..Q4K_BLOCK / Q4K_SUB {
            (block.scales[s], block.mins[s]) = scale_min(s, packed);
        }
        // Each 32 bytes hold two sub-blocks: the low nibbles, then the high ones.
        for (chunk, qs) in src[16..].chunks_exact(Q4K_SUB).enumerate() {
            for (l, &q) in qs.iter().enumerate() {
                block.values[chunk * 2 * Q4K_SUB + l] = q & 0x0F;
                block.values[chunk * 2 * Q4K_SUB + Q4K_SUB + l] = q >> 4;
            }
        }
        block
    }
}

/// Sub-block `s`'s 6-bit scale and min, as candle's `get_scale_min_k4` unpacks them.
fn scale_min(s: usize, q: &[u8; 12]) -> (u8, u8) {
    if s < 4 {
        (q[s] & 63, q[s + 4] & 63)
    } else {
        ((q[s + 4] & 0x0F) | ((q[s - 4] >> 6) << 4), (q[s + 4] >> 4) | ((q[s] >> 6) << 4))
    }
}

/// One activation row to Q8K exactly as candle's `BlockQ8K::from_float`: per block of 256,
/// the value of largest magnitude `max` (the first, on ties) gives `iscale = -127 / max`,
/// `q = round(iscale · x)` (half away from zero) clamped to i8, `d = 1 / iscale`. `d` goes to
/// `scales` (per block), each sub-block's `Σ q` (at most 32 · 128 in magnitude) to `sums`.
/// The kernels keep `q` and the sums in the widths they compute with (`Q`, `S`). Natively
/// only the tests call it: `x86::q4k` has the same on AVX2, held to this one.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn quantize_row_q8k<Q: From<i8>, S: From<i16>>(x: &[f32], q: &mut [Q], scales: &mut [f32], sums: &mut [S]) {
    let blocks = x.chunks_exact(Q4K_BLOCK).zip(q.chunks_exact_mut(Q4K_BLOCK));
    let per_block = Q4K_BLOCK / Q4K_SUB;
    for ((xb, qb), (d_out, sb)) in blocks.zip(scales.iter_mut().zip(sums.chunks_exact_mut(per_block))) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let iscale = if amax == 0.0 { 0.0 } else { -127f32 / max };
        *d_out = if amax == 0.0 { 0.0 } else { 1.0 / iscale };
        for ((xs, qs), sum) in xb.chunks_exact(Q4K_SUB).zip(qb.chunks_exact_mut(Q4K_SUB)).zip(sb.iter_mut()) {
            let mut total = 0i16;
            for (v, q) in xs.iter().zip(qs.iter_mut()) {
                let v = (iscale * v).round().clamp(-128.0, 127.0) as i8;
                total += i16::from(v);
                *q = Q::from(v);
            }
            *sum = S::from(total);
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn q8k_activations_are_candles() {
        // Random values with outliers, an all-zero block, and ties at .5 after scaling.
        let mut x: Vec<f32> = (0..1024u32).map(|i| ((i * 2654435761) % 2001) as f32 / 1000.0 - 1.0).collect();
        x[37] = 9.0;
        x[256..512].fill(0.0);
        x[512] = -127.0;
        x[513..520].copy_from_slice(&[0.5, -0.5, 1.5, -1.5, 2.5, 126.5, -126.5]);
        let t = Tensor::from_slice(&x, (1, x.len()), &Device::Cpu).unwrap();
        // candle's BlockQ8K: f32 d, 256 × i8, 16 × i16 sums of 16 values: 292 bytes.
        let want = candle_core::quantized::QTensor::quantize(&t, GgmlDType::Q8K).unwrap().data().unwrap().to_vec();
        let (mut q, mut d, mut sums) = (vec![0i8; 1024], vec![0f32; 4], vec![0i16; 32]);
        quantize_row_q8k(&x, &mut q, &mut d, &mut sums);
        for (b, blk) in want.chunks_exact(292).enumerate() {
            assert_eq!(d[b].to_le_bytes(), blk[0..4], "scale of block {b}");
            let got: Vec<u8> = q[b * 256..][..256].iter().map(|&v| v as u8).collect();
            assert_eq!(got, blk[4..260], "values of block {b}");
            for s in 0..8 {
                let pair = |i: usize| i16::from_le_bytes([blk[260 + 2 * i], blk[261 + 2 * i]]);
                assert_eq!(sums[b * 8 + s], pair(2 * s) + pair(2 * s + 1), "sum of block {b}, sub-block {s}");
            }
        }
        assert!(q[512..520].iter().all(|&v| v != 0), "the tie block was quantized");
    }

    #[test]
    fn q4k_blocks_dequantize_as_candle() {
        let w: Vec<f32> = (0..4 * 512u32).map(|i| ((i * 40503) % 977) as f32 / 500.0 - 0.9).collect();
        let t = Tensor::from_slice(&w, (4, 512), &Device::Cpu).unwrap();
        let q = candle_core::quantized::QTensor::quantize(&t, GgmlDType::Q4K).unwrap();
        let want = q.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        let blocks = Q4KBlocks::of(&q, 4).unwrap().expect("a Q4K matrix");
        for (row, want) in want.iter().enumerate() {
            for b in 0..2 {
                let blk = blocks.block(row, b);
                for i in 0..256 {
                    let s = i / 32;
                    let got =
                        blk.d * f32::from(blk.scales[s]) * f32::from(blk.values[i]) - blk.dmin * f32::from(blk.mins[s]);
                    let want = want[b * 256 + i];
                    assert!(
                        (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "row {row} value {}: {got} vs {want}",
                        b * 256 + i
                    );
                }
            }
        }
        assert!(Q4KBlocks::of(&q, 8).unwrap().is_none(), "4 rows are not a multiple of 8");
    }
}
