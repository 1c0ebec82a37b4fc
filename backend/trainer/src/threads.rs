//! The trainer's threads: rayon's stay awake through a forward ([`spin_workers_in_forwards`]),
//! and candle's own worker threads are set for a process whose cores rayon's already fill
//! ([`short_spin_for_candle_pool`]).
//!
//! Besides rayon's pool (our kernels, GELU, softmax), candle 0.11 runs element-wise ops of 64K
//! values or more (a residual add at 128 tokens, the attention mask) on a pool of its own, with
//! one thread fewer than rayon's. After each such op that thread spins 25,000 `pause`s before
//! it sleeps, while rayon's threads need every core for the next product: at one tweet of 128
//! tokens the spinning held 8 % of a forward's CPU samples on the 2-core Zen 3 machine. With
//! 1,000 (still enough to catch an op that follows at once) q4k at 1 × 128 went from 160-180 to
//! 139-165 ms and q8_0 from 213-230 to 191-197 ms in four alternating runs (docs/benchmarks.md).

/// The variable candle reads when it starts the pool.
const SPIN_LIMIT_VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
const SPIN_LIMIT: &str = "1000";

/// Shortens the spin unless the user has set it. Call once, early in `main`, before any thread
/// starts: it sets an environment variable that candle reads when it first needs the pool.
pub fn short_spin_for_candle_pool() {
    if std::env::var_os(SPIN_LIMIT_VAR).is_none() {
        std::env::set_var(SPIN_LIMIT_VAR, SPIN_LIMIT);
    }
}

/// Keeps rayon's other threads spinning between a forward's parallel steps instead of sleeping
/// (`kernels::threads::spin_workers_in_forwards`): `predict`, `eval`, `train` and the calibration
/// of `import` run one forward after another on cores the trainer has to itself, and waking a
/// sleeping thread for each of a forward's hundreds of steps cost a quarter of each thread's
/// time at one 128-token tweet (docs/benchmarks.md). Call once, early in `main`.
pub fn spin_workers_in_forwards() {
    kernels::threads::spin_workers_in_forwards(true);
}
