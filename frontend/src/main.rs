//! The page: panic hook, then mount the app. A no-op off wasm32 (see Cargo.toml).

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    frontend::app::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
