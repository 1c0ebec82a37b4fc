//! A candle Q8_0 matrix read block by block, for the kernels that repack it at load
//! (`wasm_matmul`, `x86_matmul`).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;
use half::f16;
use std::borrow::Cow;

/// Values per Q8_0 block.
pub const BLOCK: usize = 32;
/// Bytes of one Q8_0 block in candle's layout: f16 scale, then 32 × i8.
pub const BLOCK_BYTES: usize = 34;

/// A Q8_0 matrix `[n, k]`, its bytes as candle stores them.
pub struct Q8_0Blocks<'a> {
    pub n: usize,
    pub k: usize,
    data: Cow<'a, [u8]>,
}

impl<'a> Q8_0Blocks<'a> {
    /// The blocks of `w`, or `None` when it is not a Q8_0 matrix of whole blocks whose row count
    /// is a non-zero multiple of `rows_multiple` (a kernel's row grouping).
    pub fn of(w: &'a QTensor, rows_multiple: usize) -> Result<Option<Self>> {
        let (n, k) = match w.shape().dims() {
            &[n, k] => (n, k),
            _ => return Ok(None),
        };
        if w.dtype() != GgmlDType::Q8_0 || n % rows_multiple != 0 || k % BLOCK != 0 || n == 0 {
            return Ok(None);
        }
        let data = w.data()?;
        if data.len() != n * (k / BLOCK) * BLOCK_BYTES {
            candle_core::bail!("Q8_0 tensor of {} bytes for shape [{n}, {k}]", data.len());
        }
        Ok(Some(Q8_0Blocks { n, k, data }))
    }

    /// Block `b` of row `row`: its scale (stored as f16) and its 32 values.
    pub fn block(&self, row: usize, b: usize) -> (f32, impl Iterator<Item = i8> + '_) {
        let src = &self.data[(row * (self.k / BLOCK) + b) * BLOCK_BYTES..][..BLOCK_BYTES];
        (f16::from_le_bytes([src[0], src[1]]).to_f32(), src[2..].iter().map(|&v| v as i8))
    }
}
