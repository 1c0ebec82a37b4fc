//! A second model worker that takes half of each explanation, on devices with a core and the
//! memory to spare.
//!
//! An explanation is one forward row per word (`model::explain`): ~1.3 s for a 32-token post
//! with roberta-base q8_0 in one worker on the Intel machine, where a prediction takes 65 ms.
//! The page's worker runs on one core; wasm threads would need a toolchain we do not have, so
//! the other core gets a worker of its own. It is started on the first explanation (which runs
//! in the main worker alone), loads the same bundle from the Cache API, and then runs half of
//! every explanation's batches (`Occlusion::part`); the page merges the halves. The main worker
//! reuses the prediction it just made of the text (`Engine::analyze`), so the helper runs the
//! text itself and the two halves are even (13 rows each for a 26-word post). It costs a
//! second copy of the model in memory while it lives, so it is only started where the browser
//! reports at least 2 cores and (where it says) 4 GB of memory, and it is stopped after
//! [`IDLE`] without an explanation.

use crate::browser::js_error_text;
use crate::protocol::{Event, Request};
use std::cell::RefCell;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

/// How long the helper stays after the last explanation.
pub const IDLE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperState {
    Off,
    Loading,
    Ready,
    /// It failed once: explanations stay in the main worker for this visit.
    Broken,
}

thread_local! {
    static HELPER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Whether this device can afford a second copy of the model.
pub fn allowed() -> bool {
    let Some(nav) = web_sys::window().map(|w| w.navigator()) else { return false };
    let cores = nav.hardware_concurrency();
    // `navigator.deviceMemory` (GB, rounded down; Chromium only): unknown elsewhere.
    let memory = js_sys::Reflect::get(&nav, &"deviceMemory".into()).ok().and_then(|v| v.as_f64());
    cores >= 2.0 && memory.is_none_or(|gb| gb >= 4.0)
}

/// Starts the helper worker (the build the page chose); events and errors go to the handlers.
pub fn spawn(url: &str, on_event: impl Fn(Event) + 'static, on_error: impl Fn(String) + 'static) -> Result<(), String> {
    let opts = WorkerOptions::new();
    opts.set_type(WorkerType::Classic);
    let worker = Worker::new_with_options(url, &opts).map_err(|e| js_error_text(&e))?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        if let Some(Ok(event)) = ev.data().as_string().map(|s| serde_json::from_str::<Event>(&s)) {
            on_event(event);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_err = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| on_error(ev.message()));
    worker.set_onerror(Some(on_err.as_ref().unchecked_ref()));
    on_err.forget();
    HELPER.with(|h| *h.borrow_mut() = Some(worker));
    Ok(())
}

pub fn post(req: &Request) -> Result<(), String> {
    HELPER.with(|h| match h.borrow().as_ref() {
        Some(w) => w.post_message(&JsValue::from_str(&req.to_json())).map_err(|e| js_error_text(&e)),
        None => Err("the helper worker is not running".into()),
    })
}

/// Ends the helper (its memory goes with it).
pub fn stop() {
    if let Some(w) = HELPER.with(|h| h.borrow_mut().take()) {
        w.terminate();
    }
}
