//! The page's side of the worker: starts it, sends requests, and turns its events into
//! signals the components read. Only this module knows the worker exists.

use crate::browser::js_error_text;
use crate::protocol::{Event, FailureKind, Prediction, ReadyInfo, Request};
use leptos::prelude::*;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

/// Trunk's loader for the `worker` bin (`data-loader-shim` in index.html), when index.html's
/// script has not chosen (`sentimentWorkerUrl`: the `worker_relaxed` build where the browser
/// has Relaxed SIMD).
const WORKER_URL: &str = "./worker_loader.js";

/// The worker script index.html chose for this browser.
fn worker_url() -> String {
    js_sys::Reflect::get(&js_sys::global(), &"sentimentWorkerUrl".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| WORKER_URL.to_string())
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Starting,
    Loading { loaded: u64, total: u64 },
    Ready,
    Failed(String),
}

impl Status {
    /// The `data-testid="model-status"` word.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Starting | Status::Loading { .. } => "loading",
            Status::Ready => "ready",
            Status::Failed(_) => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    Idle,
    Running { id: u64 },
    Done { id: u64, text: String, prediction: Prediction, elapsed_ms: f64 },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum BatchRun {
    Idle,
    Running { id: u64, done: usize, total: usize },
    Done { id: u64, predictions: Vec<Prediction>, elapsed_ms: f64 },
    Cancelled { done: usize, total: usize },
    Failed(String),
}

/// Everything the page knows about the model; `Copy`, so components take it from context.
#[derive(Clone, Copy)]
pub struct Model {
    pub status: RwSignal<Status>,
    pub info: RwSignal<Option<ReadyInfo>>,
    pub analysis: RwSignal<Analysis>,
    pub batch: RwSignal<BatchRun>,
    /// A one-line announcement (new version, cache cleared, offline start).
    pub notice: RwSignal<Option<String>>,
    /// Texts of in-flight analyses by request id (the result carries only the id).
    pending_text: StoredValue<Vec<(u64, String)>>,
    next_id: StoredValue<u64>,
    bundle_url: StoredValue<String>,
    /// Requests made before the worker said `Started`.
    queued: StoredValue<Option<Vec<Request>>>,
}

/// The worker `index.html` starts before the page's wasm loads (so the two start-ups overlap),
/// with the events it sent until now; `None` when the page did not start one.
fn adopt_early_worker() -> Option<(Worker, js_sys::Array)> {
    let global = js_sys::global();
    let started = js_sys::Reflect::get(&global, &"sentimentWorker".into()).ok().filter(|v| v.is_object())?;
    let _ = js_sys::Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &"sentimentWorker".into());
    let worker = js_sys::Reflect::get(&started, &"worker".into()).ok()?.dyn_into::<Worker>().ok()?;
    let early = js_sys::Reflect::get(&started, &"early".into()).ok()?.dyn_into::<js_sys::Array>().ok()?;
    Some((worker, early))
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

impl Model {
    /// Starts the worker and asks it to load the bundle at `bundle_url`.
    pub fn start(bundle_url: String) -> Model {
        let model = Model {
            status: RwSignal::new(Status::Starting),
            info: RwSignal::new(None),
            analysis: RwSignal::new(Analysis::Idle),
            batch: RwSignal::new(BatchRun::Idle),
            notice: RwSignal::new(None),
            pending_text: StoredValue::new(Vec::new()),
            next_id: StoredValue::new(1),
            bundle_url: StoredValue::new(bundle_url.clone()),
            queued: StoredValue::new(Some(Vec::new())),
        };
        match model.spawn_worker() {
            Ok(()) => model.send(&Request::Load { bundle_url }),
            Err(e) => model.status.set(Status::Failed(format!("The model worker could not start: {e}"))),
        }
        model
    }

    fn spawn_worker(self) -> Result<(), String> {
        let (worker, early) = match adopt_early_worker() {
            Some(started) => started,
            None => {
                let opts = WorkerOptions::new();
                // Trunk builds the worker with wasm-bindgen's no-modules target: a classic script.
                opts.set_type(WorkerType::Classic);
                (Worker::new_with_options(&worker_url(), &opts).map_err(|e| js_error_text(&e))?, js_sys::Array::new())
            }
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| self.on_worker_message(&ev));
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| self.on_worker_error(&ev));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        WORKER.with(|w| *w.borrow_mut() = Some(worker));
        // What the early worker said before these handlers existed, in order.
        for ev in early.iter() {
            if let Some(ev) = ev.dyn_ref::<ErrorEvent>() {
                self.on_worker_error(ev);
            } else if let Some(ev) = ev.dyn_ref::<MessageEvent>() {
                self.on_worker_message(ev);
            }
        }
        Ok(())
    }

    fn on_worker_message(self, ev: &MessageEvent) {
        match ev.data().as_string().map(|s| serde_json::from_str::<Event>(&s)) {
            Some(Ok(event)) => self.apply(event),
            _ => web_sys::console::error_1(&"unreadable message from the model worker".into()),
        }
    }

    /// A worker that dies (a trap, most often memory exhaustion on a phone) sends no message.
    fn on_worker_error(self, ev: &ErrorEvent) {
        let msg = format!(
            "The model worker stopped ({}). The device may be out of memory: close other tabs and reload the page.",
            ev.message()
        );
        self.fail_everything(msg);
    }

    fn send(&self, req: &Request) {
        if self.queued.with_value(|q| q.is_some()) {
            self.queued.update_value(|q| q.get_or_insert_with(Vec::new).push(req.clone()));
            return;
        }
        let sent = WORKER.with(|w| match w.borrow().as_ref() {
            Some(worker) => worker.post_message(&JsValue::from_str(&req.to_json())).map_err(|e| js_error_text(&e)),
            None => Err("the model worker is not running".into()),
        });
        if let Err(e) = sent {
            self.fail_everything(format!("Could not reach the model worker: {e}"));
        }
    }

    fn fresh_id(&self) -> u64 {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        id
    }

    pub fn bundle_url(&self) -> String {
        self.bundle_url.get_value()
    }

    pub fn analyze(&self, text: String) {
        let id = self.fresh_id();
        self.pending_text.update_value(|p| p.push((id, text.clone())));
        self.analysis.set(Analysis::Running { id });
        self.send(&Request::Analyze { id, text });
    }

    pub fn run_batch(&self, texts: Vec<String>) {
        let id = self.fresh_id();
        self.batch.set(BatchRun::Running { id, done: 0, total: texts.len() });
        self.send(&Request::Batch { id, texts });
    }

    pub fn cancel_batch(&self) {
        if let BatchRun::Running { id, .. } = self.batch.get_untracked() {
            self.send(&Request::Cancel { id });
        }
    }

    pub fn clear_cache(&self) {
        self.send(&Request::ClearCache);
    }

    fn fail_everything(&self, msg: String) {
        self.status.set(Status::Failed(msg.clone()));
        if matches!(self.analysis.get_untracked(), Analysis::Running { .. }) {
            self.analysis.set(Analysis::Failed(msg.clone()));
        }
        if matches!(self.batch.get_untracked(), BatchRun::Running { .. }) {
            self.batch.set(BatchRun::Failed(msg));
        }
    }

    fn apply(&self, event: Event) {
        match event {
            Event::Started => {
                let queued = self.queued.try_update_value(|q| q.take()).flatten().unwrap_or_default();
                for req in queued {
                    self.send(&req);
                }
            }
            Event::Progress { loaded, total } => self.status.set(Status::Loading { loaded, total }),
            Event::Ready(info) => {
                let v = &info.manifest.version;
                let notice = match (&info.replaced, info.offline) {
                    (_, true) => Some(format!("Offline: using the cached model {v}.")),
                    (Some(old), _) => Some(format!("A new model version is available and loaded: {v} (was {old}).")),
                    _ => None,
                };
                self.notice.set(notice);
                self.info.set(Some(*info));
                self.status.set(Status::Ready);
            }
            Event::Analyzed { id, prediction, elapsed_ms } => {
                let text = self.take_text(id);
                if matches!(self.analysis.get_untracked(), Analysis::Running { id: r } if r == id) {
                    self.analysis.set(Analysis::Done { id, text, prediction, elapsed_ms });
                }
            }
            Event::BatchProgress { id, done, total } => self.update_batch(id, BatchRun::Running { id, done, total }),
            Event::BatchDone { id, predictions, elapsed_ms } => {
                self.update_batch(id, BatchRun::Done { id, predictions, elapsed_ms })
            }
            Event::BatchCancelled { id, done } => {
                if let BatchRun::Running { id: r, total, .. } = self.batch.get_untracked() {
                    if r == id {
                        self.batch.set(BatchRun::Cancelled { done, total });
                    }
                }
            }
            Event::CacheCleared { removed } => self
                .notice
                .set(Some(format!("Cleared the cached model ({removed} entries). The next visit downloads it again."))),
            Event::Failed { id: Some(id), kind, message } => {
                let msg = describe(kind, &message);
                self.take_text(id);
                if matches!(self.analysis.get_untracked(), Analysis::Running { id: r } if r == id) {
                    self.analysis.set(Analysis::Failed(msg));
                } else {
                    self.update_batch(id, BatchRun::Failed(msg));
                }
            }
            Event::Failed { id: None, kind, message } => self.status.set(Status::Failed(describe(kind, &message))),
        }
    }

    fn take_text(&self, id: u64) -> String {
        let mut text = String::new();
        self.pending_text.update_value(|p| {
            if let Some(i) = p.iter().position(|(pid, _)| *pid == id) {
                text = p.remove(i).1;
            }
        });
        text
    }

    /// Applies a batch event only if it belongs to the batch the page is showing.
    fn update_batch(&self, id: u64, next: BatchRun) {
        if let BatchRun::Running { id: r, .. } = self.batch.get_untracked() {
            if r == id {
                self.batch.set(next);
            }
        }
    }
}

/// The worker's message with what the user can do about it.
fn describe(kind: FailureKind, message: &str) -> String {
    match kind {
        FailureKind::Fetch => format!("The model could not be downloaded: {message}. Check the connection and reload."),
        FailureKind::Integrity => format!(
            "The downloaded model does not match its manifest ({message}). It may be mid-publish or corrupted; reload to try again."
        ),
        FailureKind::Bundle => format!("The model bundle cannot be used: {message}"),
        FailureKind::NotReady => "The model is not loaded yet; wait until the status says ready.".into(),
        FailureKind::Inference => format!("The analysis failed: {message}"),
        FailureKind::Protocol => format!("Internal error between page and worker: {message}"),
    }
}
