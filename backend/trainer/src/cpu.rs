//! The CPU forms the kernels may use, set by `main` (and the benchmarks) once at start.

/// Set to `0` to keep the AVX-512 forms of the Q8_0 product on a CPU with AMX (to compare them).
pub const AMX_VAR: &str = "SENTIMENT_AMX";

/// Lets the Q8_0 product use AMX tiles (`kernels::enable_amx`) unless `SENTIMENT_AMX=0`;
/// returns whether the AMX form will run.
pub fn enable_amx_unless_disabled() -> bool {
    std::env::var(AMX_VAR).map(|v| v != "0").unwrap_or(true) && kernels::enable_amx()
}
