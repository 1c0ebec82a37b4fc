//! The Q8_0 product's tiles on Intel AMX (Sapphire Rapids and later): `tdpbssd` multiplies a
//! 16 × 32 tile of signed activation bytes by 32 × 16 signed weight bytes into 16 × 16 exact
//! i32 sums, one instruction for what takes the wide AVX-512 form (`q8_0::WideTile`) 128
//! `vpdpbusd`s. Q8_0 has a scale per block of 32 values on both sides, so each block's sums
//! leave the tile (`tilestored`) and are scaled and added in f32 on 512-bit registers with the
//! other forms' operations in the same order: the same numbers, bit for bit.
//!
//! The scaling is now the work: four vector instructions per 16 sums, against one tile
//! instruction per 256. Two blocks go through the tiles before either is scaled, so that the
//! scaling waits less on the tile store before it. In a C model of the loop with its data in
//! L1 (`scripts/avx512-loads/amx_model.c`) that ran at 420-480 GMAC/s per core, against
//! 330-375 block by block and 280-320 for the wide form. In the product itself
//! (`native_kernels`), the AMX form ran at 1.3-2× the wide form's rate on one thread and
//! 1.1-2.1× on two; a forward took ~0.85× the time (docs/benchmarks.md, "AMX tiles for Q8_0").
//!
//! Rust has no stable AMX intrinsics: the tile instructions are inline assembly. The compiler
//! does not know the tile registers; only `AmxTile` uses them, each block's sums going from
//! the tiles to memory within one `asm!`. Linux hands out the tiles' 8 KB of state only to a
//! process that asks (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), once.

use super::tiles::TileOut;
use crate::blocks::BLOCK;
use std::arch::asm;
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Activation rows in one tile (its A operand's rows, the most a tile has).
pub(crate) const AMX_ROWS: usize = 16;
/// Weight rows in one group (the B operand's columns of four bytes each).
pub(crate) const AMX_COLS: usize = 16;
/// Whether the AMX form may run: the program enabled it ([`enable`]), the CPU has AMX-INT8 and
/// AVX-512 (for the scaling), and the OS gave this process the tiles' state.
pub(crate) fn available() -> bool {
    *ENABLED.get().unwrap_or(&false)
}

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Asks for the AMX form (`crate::enable_amx`): checks the CPU and asks Linux for the tiles'
/// state, once; returns whether the form will run.
pub fn enable() -> bool {
    *ENABLED.get_or_init(|| cpu_has_amx_int8() && is_x86_feature_detected!("avx512f") && request_tile_state())
}

fn cpu_has_amx_int8() -> bool {
    // CPUID leaf 7, sub-leaf 0: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is asked only where the CPU has it.
    let edx = unsafe {
        if __get_cpuid_max(0).0 < 7 {
            return false;
        }
        __cpuid_count(7, 0).edx
    };
    edx & (1 << 24) != 0 && edx & (1 << 25) != 0
}

/// Asks Linux for the tile data state; elsewhere AMX is not used.
#[cfg(target_os = "linux")]
fn request_tile_state() -> bool {
    const SYS_ARCH_PRCTL: isize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: arch_prctl with these arguments only grants this process permission to use the
    // tile state; the syscall clobbers rcx and r11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_state() -> bool {
    false
}

/// `ldtilecfg`'s 64-byte operand (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    /// Bytes per row of each tile register.
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// tmm0, tmm1: two blocks' sums, 16 × 16 i32; tmm2: activations, 16 rows × 32 bytes;
/// tmm3: weights, 8 rows of four values × 16 weight rows.
const CONFIG: TileConfig = {
    let mut c = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
    c.colsb[0] = 64;
    c.rows[0] = 16;
    c.colsb[1] = 64;
    c.rows[1] = 16;
    c.colsb[2] = BLOCK as u16;
    c.rows[2] = AMX_ROWS as u8;
    c.colsb[3] = 64;
    c.rows[3] = (BLOCK / 4) as u8;
    c
};

/// Loads `CONFIG` into this thread's tile registers, once per thread: loaded for every tile
/// (with `tilerelease` after it), in passes of 8 blocks, it cut the product's rate at 512 rows
/// to less than half. The tiles stay configured for the thread's life (nothing else in the
/// process uses them).
///
/// # Safety
/// `available()` must hold.
unsafe fn configure_tiles() {
    // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
    unsafe {
        thread_local! {
            static CONFIGURED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        CONFIGURED.with(|done| {
            if !done.get() {
                asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly));
                done.set(true);
            }
        });
    }
}

/// One group of 16 weight rows against one tile of 16 activation rows (rows past the input's
/// end are zeros, and their sums are not stored).
pub(crate) struct AmxTile {
    /// The group's weights, per block 8 quads × 16 rows × 4 values (`PackedQ8::pack`), and
    /// its scales, per block 16.
    pub(crate) wq: *const i8,
    pub(crate) ws: *const f32,
    /// The tile's activations, per block 16 rows × 32 values (`tile_major`).
    pub(crate) xq: *const i8,
    /// The tile's activation scales, per block 16 (`tile_major`).
    pub(crate) xd: *const f32,
    pub(crate) out: TileOut,
}

impl AmxTile {
    /// # Safety
    /// `available()` must hold; the tile must have 16 activation rows (padded) and its
    /// group's weights; the first `rows` ≤ `R` ≤ 16 of them are scaled, the first `rows` stored.
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(crate) unsafe fn run<const R: usize>(self, rows: usize) {
        #[cfg(any(test, feature = "tested-forms"))]
        crate::tested_forms::ran(crate::tested_forms::KernelForm::Q8_0Amx);
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let mut sums = Sums([0; 2 * AMX_ROWS * AMX_COLS]);
            let blocks = self.out.blocks.clone();
            let mut acc = self.out.start_rows::<R>(rows);
            configure_tiles();
            for b in blocks.clone().step_by(2) {
                let count = (blocks.end - b).min(2);
                self.products(b, count == 2, &mut sums);
                self.scale_into(&mut acc, b, count, &sums);
            }
            self.out.finish_rows(acc, rows);
        }
    }

    /// Block `b`'s sums (and block `b + 1`'s, with `two`) into `sums`.
    ///
    /// # Safety
    /// As `run`, with the tile configuration loaded.
    #[inline]
    unsafe fn products(&self, b: usize, two: bool, sums: &mut Sums) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            let s = sums.0.as_mut_ptr();
            self.product::<0>(b, s);
            if two {
                self.product::<1>(b + 1, s.add(AMX_ROWS * AMX_COLS));
            }
        }
    }

    /// Block `b`'s sums, through tile register `tmmC`, to `s`.
    ///
    /// # Safety
    /// As `products`; `s` must hold 16 × 16 sums.
    #[inline]
    unsafe fn product<const C: usize>(&self, b: usize, s: *mut i32) {
        // SAFETY: the caller upholds this function's `# Safety` conditions, which are all these operations need.
        unsafe {
            asm!(
                "tilezero tmm{c}",
                "tileloadd tmm2, [{x} + {stride}*1]",
                "tileloadd tmm3, [{w} + {row}*1]",
                "tdpbssd tmm{c}, tmm2, tmm3",
                "tilestored [{s} + {row}*1], tmm{c}",
                c = const C,
                x = in(reg) self.xq.add(b * AMX_ROWS * BLOCK),
                stride = in(reg) BLOCK,
                w = in(reg) self.wq.add(b * BLOCK * AMX_COLS),
                s = in(reg) s,
                row = in(reg) 64usize,
                options(nostack),
            );
        }
    }

    /// Adds the sums of `count` blocks from `first`, scaled, to the rows' accumulators.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f")]
    unsafe fn scale_into<const R: usize>(&self, acc: &mut [__m512; R], first: usize, count: usize, sums: &Sums) {
        // SAFETY: as `run`'s, which the caller upholds: `sums` holds `first + count` blocks of the tile's rows, the accumulators' rows are the tile's.
        unsafe {
            for (h, b) in (first..first + count).enumerate() {
                let d_w = _mm512_loadu_ps(self.ws.add(b * AMX_COLS));
                let xd = self.xd.add(b * AMX_ROWS);
                let sums = &sums.0[h * AMX_ROWS * AMX_COLS..];
                for (r, a) in acc.iter_mut().enumerate() {
                    let s = _mm512_loadu_si512(sums[r * AMX_COLS..].as_ptr().cast());
                    // The other forms' operations in the same order, so their numbers.
                    let scale = _mm512_mul_ps(d_w, _mm512_set1_ps(*xd.add(r)));
                    *a = _mm512_add_ps(*a, _mm512_mul_ps(_mm512_cvtepi32_ps(s), scale));
                }
            }
        }
    }
}

/// Two blocks' 16 × 16 sums, as `tilestored` leaves them (rows 64 bytes apart).
#[repr(C, align(64))]
struct Sums([i32; 2 * AMX_ROWS * AMX_COLS]);
