//! Where a forward runs: natively on one of the threads of candle's rayon pool, with the pool's
//! other threads awake for its length when the program asks for it ([`spin_workers_in_forwards`]:
//! the trainer does; the model never decides it on its own). wasm32 has no threads.

#[cfg(not(target_arch = "wasm32"))]
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`spin_workers_in_forwards`].
#[cfg(not(target_arch = "wasm32"))]
static SPIN_IN_FORWARDS: AtomicBool = AtomicBool::new(false);

/// Keeps the pool's other threads spinning between a forward's parallel steps instead of
/// sleeping ([`with_workers_spinning`]), for every forward this process runs from now on:
/// faster for a program that runs forwards one after another on cores it has to itself (the
/// trainer sets it at start); off by default. A no-op on wasm32.
pub fn spin_workers_in_forwards(on: bool) {
    #[cfg(not(target_arch = "wasm32"))]
    SPIN_IN_FORWARDS.store(on, Ordering::Relaxed);
    #[cfg(target_arch = "wasm32")]
    let _ = on;
}

/// Runs a forward `f` on the pool of `device` (natively), with the other threads spinning
/// between its parallel steps if the program asked for it ([`spin_workers_in_forwards`]).
///
/// Natively, the whole forward runs on one of the threads of candle's rayon pool
/// (`Device::with_context`): then each of its many parallel steps (six products per layer
/// alone) needs one other thread while the caller works, where a caller outside the pool wakes
/// two and sleeps until they are done. At one tweet of 16 tokens the operating system's share
/// of the CPU samples went from 21 % to 14 % (docs/benchmarks.md, "The forward runs on one of
/// candle's rayon threads").
pub fn run_forward<R: Send>(device: &candle_core::Device, f: impl FnOnce() -> R + Send) -> R {
    #[cfg(not(target_arch = "wasm32"))]
    return device
        .with_context(|| if SPIN_IN_FORWARDS.load(Ordering::Relaxed) { with_workers_spinning(f) } else { f() });
    #[cfg(target_arch = "wasm32")]
    {
        let _ = device;
        f()
    }
}

/// Runs `f` while the pool's other threads wait for its parallel steps awake, instead of
/// sleeping between them. A forward is hundreds of short parallel steps (each product, each
/// rotation, softmax, GELU): a sleeping thread must be woken for every one. On a 2-vCPU
/// machine that left each thread idle a quarter of a forward of one 128-token tweet, and the
/// operating system's wake-ups were about a tenth of its samples. Each other thread runs a job that
/// executes whatever work appears (`rayon::yield_now`) until `f` returns, as ONNX Runtime's
/// threads spin between operators.
///
/// One forward at a time spins. Forwards on several threads at once (a server's requests)
/// then cannot end up each waiting inside another's spinning job, which would wait for that
/// forward in turn: rayon's stealing order seems to rule it out, but nothing promises it.
#[cfg(not(target_arch = "wasm32"))]
fn with_workers_spinning<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static SPINNING: AtomicBool = AtomicBool::new(false);
    /// Ends the spinning when dropped, so that a panic in `f` stops it too.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
            SPINNING.store(false, Ordering::Release);
        }
    }
    if rayon::current_num_threads() < 2 || SPINNING.swap(true, Ordering::AcqRel) {
        return f();
    }
    let done = AtomicBool::new(false);
    let caller = rayon::current_thread_index();
    rayon::scope(|s| {
        let stop = Stop(&done);
        for _ in 1..rayon::current_num_threads() {
            s.spawn(|_| {
                // The caller itself may pick a spinning job up while it waits for other work.
                if rayon::current_thread_index() == caller {
                    return;
                }
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::thread::yield_now();
                    }
                }
            });
        }
        let out = f();
        drop(stop);
        out
    })
}
