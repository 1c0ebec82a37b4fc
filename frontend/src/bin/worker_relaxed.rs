//! The model worker for browsers with Relaxed SIMD: `worker` with the `relaxed-simd` feature,
//! whose Q8_0 and Q4K kernels multiply 8-bit values 16 at a time where the engine does that
//! exactly and fast (`kernels::wasm::Kernel::best`; simd128 elsewhere). A
//! module that uses Relaxed SIMD does not load at all where it is missing, so this is a build of
//! its own; the page starts it only when `WebAssembly.validate` accepts such a module
//! (index.html). A no-op off wasm32.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    frontend::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
