//! The narrow form: groups of 8 weight rows on 256-bit registers, the inner step by AVX2,
//! AVX-VNNI or AVX-512 VNNI on 256-bit registers (`ByteDot`).

use super::*;

/// One group of 8 weight rows against up to `ROWS` activation rows.
pub(super) struct Tile {
    /// The group's packed quants and scales (all blocks).
    pub(super) wq: *const i8,
    pub(super) ws: *const f32,
    /// Quantized activations and their scales from the tile's first row on.
    pub(super) xq: *const i8,
    pub(super) xd: *const f32,
    pub(super) k: usize,
    pub(super) out: TileOut,
}

impl ByteDotTile for Tile {
    #[cfg(any(test, feature = "tested-forms"))]
    const FORMS: [crate::tested_forms::KernelForm; 3] = {
        use crate::tested_forms::KernelForm::*;
        [Q8_0Avx2, Q8_0AvxVnni, Q8_0Avx512Vnni]
    };

    /// The kernel, with `dot` as its inner step. The activations are unsigned in one of two
    /// ways, both exact:
    /// - `VNNI` (`vpdpbusd`, whose i32 sums cannot overflow here): they are stored as
    ///   `x + 128`, and `128 · Σ w` is taken off each block's sums. Per four values and row:
    ///   a broadcast and one instruction;
    /// - otherwise (`vpmaddubsw`, whose pair sums are i16): `|w| · (x · sign w)`, since
    ///   `2 · 255 · 127` would saturate i16 where `2 · 127 · 127` does not.
    #[inline(always)]
    unsafe fn run_with<const R: usize, const VNNI: bool>(self, dot: impl Fn(__m256i, __m256i, __m256i) -> __m256i) {
        // SAFETY: the caller upholds `ByteDotTile::run_with`'s conditions (the tile's, the step's instructions enabled), which are all these operations need.
        unsafe {
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
}
