//! The model worker for browsers with Relaxed SIMD: `worker` with the `relaxed-simd` feature,
//! whose Q4K kernel multiplies 8-bit values 16 at a time (`shared::model::wasm_q4k`). A
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
