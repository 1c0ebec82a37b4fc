//! The model worker: started by the page through Trunk's `worker_loader.js`. A no-op off wasm32.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    frontend::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
