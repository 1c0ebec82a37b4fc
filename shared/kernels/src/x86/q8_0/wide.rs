//! The wide form: groups of 32 weight rows on 512-bit registers (AVX-512 VNNI and BW).

use super::*;

/// The quantized activations as the wide tiles read them (`tile_major`, `WIDE_ROWS` rows).
pub(super) struct WideActivations {
    pub(super) kb: usize,
    pub(super) quants: Vec<i8>,
    pub(super) scales: Vec<f32>,
    /// Per block and row, `-128 · Σ x` over the block: where the block's integer sums start
    /// (see `WideTile`).
    pub(super) offsets: Vec<i32>,
}

impl WideActivations {
    /// Rows of `k` values quantized in `tile_major` order for `WIDE_ROWS` rows (`quants`),
    /// with their blocks' scales (`scales`).
    pub(super) fn pack(k: usize, quants: Vec<i8>, scales: Vec<f32>) -> Self {
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
    pub(super) fn tile(&self, row: usize) -> WideTileX {
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
pub(super) struct WideTileX {
    pub(super) quants: *const i8,
    pub(super) scales: *const f32,
    pub(super) offsets: *const i32,
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
pub(super) struct WideTile {
    /// The group's packed quants and scales (all blocks).
    pub(super) wq: *const i8,
    pub(super) ws: *const f32,
    pub(super) x: WideTileX,
    pub(super) out: TileOut,
}

impl WideTile {
    /// # Safety
    /// The tile must have `R` activation rows and its group's weights; the CPU must have AVX2,
    /// FMA, AVX-512 F and BW and AVX-512 VNNI.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn run<const R: usize>(self) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::Q8_0Wide);
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
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
}
