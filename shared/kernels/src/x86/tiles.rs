//! How the x86 products run over their tiles, for Q8_0 and Q4K alike: the threads' shares of
//! weight groups, passes that keep activations in L1 ([`for_each_tile`]), where a tile's sums
//! go ([`TileOut`]) and the tile-major activation layout ([`tile_major`]).

use super::{PARALLEL_ROWS, WIDE_LANES};
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Calls `tile(group, row, rows, out)` for every tile of an `m × n` product over `kb` blocks
/// (`out`: where the tile's `cols` columns of `rows` rows go, see `TileOut`). On rayon's
/// threads, each taking a share of the groups of `cols` weight rows, in passes of `pass_rows`
/// rows × `pass_blocks` blocks (whose quantized activations stay in L1 while every group of
/// the share runs over them; a single pass of rows takes all blocks at once), in tiles of at
/// most `tile_rows` rows. A group's tiles for the same rows come in block order, one at a
/// time, so partial sums can wait in the output between passes.
pub(crate) fn for_each_tile(
    (m, n): (usize, usize),
    kb: usize,
    bias: &[f32],
    out: &mut [MaybeUninit<f32>],
    (cols, pass_rows, pass_blocks, tile_rows): (usize, usize, usize, usize),
    tile: impl Fn(usize, usize, usize, TileOut) + Sync,
) {
    // Every value of `out` belongs to one tile of the first pass (blocks from 0), which writes
    // it without reading it: so `out` need not be initialized, and the caller relies on it
    // being written (`packed_product`). With no blocks there would be no tiles.
    assert!(n.is_multiple_of(cols) && bias.len() == n && out.len() == m * n && kb > 0, "a {m} × {n} product");
    let groups = n / cols;
    // With one pass of rows (a tweet or two), splitting the blocks into passes only breaks each
    // group's weights, which then dominate the traffic, into pieces: the activations are
    // read from L2 at worst, and the weights stream. At 1 × 16 that took a forward from
    // ~15-19 ms to ~14 ms (q8_0) and from ~11 ms to ~8.5-11 ms (q4k) on the Zen 5 machine
    // (docs/benchmarks.md).
    let pass_blocks = if m <= pass_rows { kb } else { pass_blocks };
    let out = DisjointWrites(out.as_mut_ptr().cast::<f32>());
    // A few shares per thread, so a thread slowed by other work does not hold up the rest.
    let share = groups.div_ceil(rayon::current_num_threads() * 4).max(1);
    (0..groups).into_par_iter().step_by(share).for_each(|first| {
        for (r0, b0) in (0..m).step_by(pass_rows).flat_map(|r0| (0..kb).step_by(pass_blocks).map(move |b0| (r0, b0))) {
            let pass = pass_rows.min(m - r0);
            let blocks = b0..(b0 + pass_blocks).min(kb);
            for g in first..(first + share).min(groups) {
                let mut r = r0;
                while r < r0 + pass {
                    let rows = tile_rows.min(r0 + pass - r);
                    let tile_out = TileOut {
                        // SAFETY: (the offset) row r, column `cols · g` is inside the output.
                        out: unsafe { out.at(r * n + cols * g) },
                        n,
                        bias: bias[cols * g..].as_ptr(),
                        blocks: blocks.clone(),
                        last: blocks.end == kb,
                    };
                    tile(g, r, rows, tile_out);
                    r += rows;
                }
            }
        }
    });
}

/// A buffer written by several threads at disjoint places: the output matrix (by columns),
/// quantized activations (by rows).
pub(crate) struct DisjointWrites<T>(pub(crate) *mut T);
// SAFETY: the threads write disjoint elements (see `for_each_tile` and `quantize_rows_tile_major`)
// and nothing reads until they join.
unsafe impl<T> Sync for DisjointWrites<T> {}

impl<T> DisjointWrites<T> {
    /// The buffer from element `offset` on.
    ///
    /// # Safety
    /// `offset` must be inside the buffer.
    pub(crate) unsafe fn at(&self, offset: usize) -> *mut T {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe { self.0.add(offset) }
    }
}

/// Where one tile's sums go: 8, 16 or 32 columns of its rows of the output, over the blocks
/// of one pass. Each group's columns of each row belong to one tile at a time.
pub(crate) struct TileOut {
    /// The output at the tile's first row and first column; rows are `n` apart.
    out: *mut f32,
    n: usize,
    /// The columns' biases.
    bias: *const f32,
    /// The blocks of this pass: the first pass starts the sums, later ones add to the partial
    /// sums waiting in the output, the last also adds the bias.
    pub(crate) blocks: std::ops::Range<usize>,
    last: bool,
}

impl TileOut {
    /// The sums so far of `R` rows: zero, or what the passes before left in the output.
    ///
    /// # Safety
    /// The tile must have `R` rows, and the CPU AVX2.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn start<const R: usize>(&self) -> [__m256; R] {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); R];
            if self.blocks.start > 0 {
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_loadu_ps(self.out.add(r * self.n));
                }
            }
            acc
        }
    }

    /// Stores the sums of `R` rows, with the bias after the last pass.
    ///
    /// # Safety
    /// As `start`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn finish<const R: usize>(&self, acc: [__m256; R]) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let bias = _mm256_loadu_ps(self.bias);
            for (r, a) in acc.into_iter().enumerate() {
                _mm256_storeu_ps(self.out.add(r * self.n), if self.last { _mm256_add_ps(a, bias) } else { a });
            }
        }
    }

    /// `start` for `H` × 16 columns.
    ///
    /// # Safety
    /// The tile must have `R` rows of `H` × 16 columns, and the CPU AVX-512.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(crate) unsafe fn start_wide<const R: usize, const H: usize>(&self) -> [[__m512; H]; R] {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); H]; R];
            if self.blocks.start > 0 {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (h, a) in row.iter_mut().enumerate() {
                        *a = _mm512_loadu_ps(self.out.add(r * self.n + h * WIDE_LANES));
                    }
                }
            }
            acc
        }
    }

    /// `start` for the first `rows` of `R` rows of 16 columns; the rest start at zero. Not
    /// `start_wide` with a row count: the AMX product ran 10-25 % slower at 128-512 rows that way.
    ///
    /// # Safety
    /// The tile must have `rows` ≤ `R` rows of 16 columns, and the CPU AVX-512.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(crate) unsafe fn start_rows<const R: usize>(&self, rows: usize) -> [__m512; R] {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); R];
            if self.blocks.start > 0 {
                for (r, a) in acc.iter_mut().enumerate().take(rows) {
                    *a = _mm512_loadu_ps(self.out.add(r * self.n));
                }
            }
            acc
        }
    }

    /// `finish` for the first `rows` of `R` rows of 16 columns.
    ///
    /// # Safety
    /// As `start_rows`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(crate) unsafe fn finish_rows<const R: usize>(&self, acc: [__m512; R], rows: usize) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let bias = _mm512_loadu_ps(self.bias);
            for (r, a) in acc.into_iter().enumerate().take(rows) {
                _mm512_storeu_ps(self.out.add(r * self.n), if self.last { _mm512_add_ps(a, bias) } else { a });
            }
        }
    }

    /// `finish` for `H` × 16 columns.
    ///
    /// # Safety
    /// As `start_wide`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(crate) unsafe fn finish_wide<const R: usize, const H: usize>(&self, acc: [[__m512; H]; R]) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            for (r, row) in acc.into_iter().enumerate() {
                for (h, a) in row.into_iter().enumerate() {
                    let bias = _mm512_loadu_ps(self.bias.add(h * WIDE_LANES));
                    let at = self.out.add(r * self.n + h * WIDE_LANES);
                    _mm512_storeu_ps(at, if self.last { _mm512_add_ps(a, bias) } else { a });
                }
            }
        }
    }
}

/// `m` rows of `kb` blocks of `block` values each, rearranged for the tiles of `tile_rows` rows:
/// tile by tile (the last one padded with zeros), block by block, row by row. A tile's data for
/// one block is then one run of `tile_rows · block` values, each at a fixed offset from the
/// block's start: the kernels' loads need no address arithmetic, and the next block follows.
/// Against the rows as quantized (`k` values apart), this took the wide Q8_0 products at 128
/// and 2048 rows from ~50-60 to ~65-90 GMAC/s per core on the Ice Lake machine
/// (docs/benchmarks.md).
pub(crate) fn tile_major<T: Copy + Default + Send + Sync>(
    rows: &[T],
    (m, kb, block): (usize, usize, usize),
    tile_rows: usize,
) -> Vec<T> {
    let row_len = kb * block;
    debug_assert_eq!(rows.len(), m * row_len);
    let tile_len = tile_rows * row_len;
    let mut tiles = vec![T::default(); m.div_ceil(tile_rows) * tile_len];
    let pack_tile = |(t, tile): (usize, &mut [T])| {
        for (r, row) in rows[t * tile_rows * row_len..].chunks(row_len).take(tile_rows).enumerate() {
            for (b, values) in row.chunks_exact(block).enumerate() {
                tile[(b * tile_rows + r) * block..][..block].copy_from_slice(values);
            }
        }
    };
    if m < PARALLEL_ROWS {
        tiles.chunks_mut(tile_len).enumerate().for_each(pack_tile);
    } else {
        tiles.par_chunks_mut(tile_len).enumerate().for_each(pack_tile);
    }
    tiles
}
