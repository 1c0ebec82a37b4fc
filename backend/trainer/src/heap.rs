//! The process heap's setting for inference and training: freed memory stays for reuse.
//! `main` applies it once, first thing; the library never changes it.
//!
//! A forward call allocates and frees tensors of up to tens of MB (at batch 32 × 128 on
//! roberta-base, the feed-forward activations alone are 50 MB). glibc serves blocks above its
//! mmap threshold (dynamic, at most 32 MB) with fresh `mmap`s, which the kernel faults in and
//! zeroes page by page at every call, and it hands freed memory at the heap's top back to the
//! system. With both thresholds raised, the next call reuses the same pages: a q4k forward at
//! 32 × 128 went from 5.2 to 4.9 s (docs/benchmarks.md). The peaks of `predict` (one
//! tweet, 256 tweets) and of `import` (the roberta-base .bin) stayed the same; the process just
//! keeps what it freed until it exits.
//!
//! It also keeps one heap (arena) for all threads. The forward runs on a thread of candle's pool
//! (`Classifier::run`), and glibc gave that thread an arena of its own, which kept its freed
//! blocks beside the main thread's: `predict` on 256 tweets peaked at 97.9 MB instead of 87.4
//! at q4k. The threads allocate a few blocks per step, so sharing one costs no measurable time.
//!
//! Training frees and reallocates the same buffers at every step the same way: with glibc's
//! defaults the page faults and zeroing were a fifth of a MiniLM step (`perf`). It used to apply
//! a second setting of its own (a 32 MB threshold, no trimming, a 256 MB top pad), which undid
//! this one's threshold for every command run after it; one setting now serves both, with the
//! larger threshold (a roberta-base step's feed-forward activations pass 32 MB at batch 32 ×
//! 128) and no trimming at all (a step can free more than 1 GB at once).

/// Blocks up to this size come from the heap.
const MMAP_THRESHOLD: i32 = 256 << 20;
/// Free memory at the heap's top stays with the process, however much (`i32::MAX` bytes).
const TRIM_THRESHOLD: i32 = i32::MAX;
/// When the heap grows, it grows by this much more than asked (fewer `brk` calls).
const TOP_PAD: i32 = 256 << 20;
/// Arenas: all threads share the main one.
const ARENA_MAX: i32 = 1;

/// Applies the setting (glibc on Linux; elsewhere nothing). Call once, early in `main`.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's parameters; it is called before other threads
        // allocate.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                && libc::mallopt(libc::M_TOP_PAD, TOP_PAD) == 1
                && libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) == 1
        };
        if !set {
            tracing::debug!("this glibc refused the heap settings; large blocks may stay with mmap");
        }
    }
}
