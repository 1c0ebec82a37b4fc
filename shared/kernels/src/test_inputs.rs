//! Deterministic inputs for the kernels' tests and benchmark: the same values on every machine
//! and every run, without a random-number crate.

/// `len` values in [-1, 1) from a 64-bit linear congruential generator started at `seed`.
pub fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
