//! Small bindings both the page and the worker use: readable JS errors, the clock, timers.
//! They go through `js_sys::global()` so the same code works in a window and in a worker.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A JS exception or rejection as one readable line.
pub fn js_error_text(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", e.name(), e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// Milliseconds from `performance.now()` (monotonic, sub-millisecond).
pub fn now_ms() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Resolves after `ms` milliseconds; `sleep(0)` lets queued messages (e.g. a cancel) run.
pub async fn sleep(ms: i32) {
    let global = js_sys::global();
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout: Function =
            Reflect::get(&global, &"setTimeout".into()).expect("setTimeout exists").unchecked_into();
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
    });
    let _ = JsFuture::from(promise).await;
}

/// The size of this module's wasm linear memory (it grows, never shrinks).
pub fn wasm_memory_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}
