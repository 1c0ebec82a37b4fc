//! The model worker: owns the [`Engine`], answers the page's [`Request`]s with [`Event`]s.
//! Batches run in chunks with a yield to the event loop between them, so a `Cancel` (and
//! single analyses) get through while a long batch runs.

mod cache;
mod fetch;
mod js_bytes;
mod loader;

use crate::browser::{js_error_text, now_ms, sleep};
use crate::engine::{length_order, Engine, BATCH_CHUNK};
use crate::protocol::{Event, FailureKind, Prediction, Request};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

#[derive(Default)]
struct State {
    engine: Option<Rc<Engine>>,
    cancelled: HashSet<u64>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(event: &Event) {
    if let Err(e) = scope().post_message(&JsValue::from_str(&event.to_json())) {
        web_sys::console::error_1(&format!("postMessage failed: {}", js_error_text(&e)).into());
    }
}

fn fail(id: Option<u64>, kind: FailureKind, message: impl Into<String>) {
    post(&Event::Failed { id, kind, message: message.into() });
}

pub fn start() {
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|ev: MessageEvent| {
        let Some(text) = ev.data().as_string() else {
            return fail(None, FailureKind::Protocol, "the worker expects JSON strings");
        };
        match serde_json::from_str::<Request>(&text) {
            Ok(req) => handle(req),
            Err(e) => fail(None, FailureKind::Protocol, format!("unreadable request: {e}")),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(&Event::Started);
}

/// The worker's wasm memory in bytes, for measurement scripts (`wasm_bindgen.wasm_memory_bytes()`
/// in the worker's scope, e.g. through Playwright's `worker.evaluate`).
#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    crate::browser::wasm_memory_bytes() as f64
}

fn engine() -> Option<Rc<Engine>> {
    STATE.with(|s| s.borrow().engine.clone())
}

fn handle(req: Request) {
    match req {
        Request::Load { bundle_url } => spawn_local(async move {
            let result = loader::load(&bundle_url, |loaded, total| post(&Event::Progress { loaded, total })).await;
            match result {
                Ok((engine, info)) => {
                    let engine = Rc::new(engine);
                    STATE.with(|s| s.borrow_mut().engine = Some(engine.clone()));
                    post(&Event::Ready(Box::new(info)));
                    // A first forward pass of the real model still meets code V8 has not
                    // optimized yet (see `crate::warm_up`): the tokenizer's, and more when the tiny
                    // model did not get far. A short text, right away, pays that while the
                    // user is still typing. Before `warm_up`, the first text analysed a second
                    // after loading took 0.90 s without this and 0.25 s with it (roberta-base
                    // q8_0, AMD machine; a steady one takes 0.18 s); with it, this pass takes
                    // 25-60 ms on a visit with V8's code cache and 0.1-0.3 s without. A request
                    // sent meanwhile waits for it.
                    let _ = engine.analyze("warm up");
                }
                Err(e) => fail(None, e.kind(), e.to_string()),
            }
        }),
        Request::Analyze { id, text } => {
            let Some(engine) = engine() else {
                return fail(Some(id), FailureKind::NotReady, "the model is not loaded yet");
            };
            let t0 = now_ms();
            match engine.analyze(&text) {
                Ok(prediction) => post(&Event::Analyzed { id, prediction, elapsed_ms: now_ms() - t0 }),
                Err(e) => fail(Some(id), FailureKind::Inference, e.to_string()),
            }
        }
        Request::Batch { id, texts } => spawn_local(run_batch(id, texts)),
        Request::Explain { id, text, part, parts } => spawn_local(run_explain(id, text, part, parts)),
        Request::Cancel { id } => STATE.with(|s| {
            s.borrow_mut().cancelled.insert(id);
        }),
        Request::ClearCache => spawn_local(async {
            match cache::clear().await {
                Ok(removed) => post(&Event::CacheCleared { removed }),
                Err(e) => fail(None, FailureKind::Bundle, format!("could not clear the cache: {e}")),
            }
        }),
    }
}

fn take_cancel(id: u64) -> bool {
    STATE.with(|s| s.borrow_mut().cancelled.remove(&id))
}

async fn run_batch(id: u64, texts: Vec<String>) {
    let Some(engine) = engine() else {
        return fail(Some(id), FailureKind::NotReady, "the model is not loaded yet");
    };
    let t0 = now_ms();
    let total = texts.len();
    let ids = match engine.encode_all(&texts) {
        Ok(ids) => ids,
        Err(e) => return fail(Some(id), FailureKind::Inference, e.to_string()),
    };
    let mut out: Vec<Option<Prediction>> = vec![None; total];
    let mut done = 0;
    post(&Event::BatchProgress { id, done, total });
    for chunk in length_order(&ids).chunks(BATCH_CHUNK) {
        sleep(0).await;
        if take_cancel(id) {
            return post(&Event::BatchCancelled { id, done });
        }
        let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        match engine.predict_ids(&seqs) {
            Ok(preds) => {
                for (&i, p) in chunk.iter().zip(preds) {
                    out[i] = Some(p);
                }
            }
            Err(e) => return fail(Some(id), FailureKind::Inference, e.to_string()),
        }
        done += chunk.len();
        post(&Event::BatchProgress { id, done, total });
    }
    take_cancel(id);
    let predictions = out.into_iter().map(|p| p.expect("every text is in one chunk")).collect();
    post(&Event::BatchDone { id, predictions, elapsed_ms: now_ms() - t0 });
}

/// Explains one text (or this worker's part of it) a batch of rows at a time, yielding now and
/// then so a `Cancel` (or an analysis) gets through during a long text's explanation.
async fn run_explain(id: u64, text: String, part: usize, parts: usize) {
    let Some(engine) = engine() else {
        return fail(Some(id), FailureKind::NotReady, "the model is not loaded yet");
    };
    if part >= parts {
        return fail(Some(id), FailureKind::Protocol, format!("part {part} of {parts}"));
    }
    let t0 = now_ms();
    let mut run = match engine.occlusion(&text, part, parts) {
        Ok(run) => run,
        Err(e) => return fail(Some(id), FailureKind::Inference, e.to_string()),
    };
    let total = run.rows();
    post(&Event::ExplainProgress { id, done: 0, total });
    // A yield costs a few milliseconds (timers are clamped), so only every ~100 ms of work:
    // a post of 32 tokens is explained in a handful of batches.
    let mut last_yield = now_ms();
    while !run.is_finished() {
        if now_ms() - last_yield > 100.0 {
            sleep(0).await;
            last_yield = now_ms();
            if take_cancel(id) {
                return post(&Event::ExplainCancelled { id });
            }
            post(&Event::ExplainProgress { id, done: run.done(), total });
        }
        if let Err(e) = engine.explain_step(&mut run) {
            return fail(Some(id), FailureKind::Inference, e.to_string());
        }
    }
    take_cancel(id);
    post(&Event::Explained { id, explanation: engine.explanation(run), elapsed_ms: now_ms() - t0 });
}
