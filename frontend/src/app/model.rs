//! The page's side of the worker: starts it, sends requests, and turns its events into
//! signals the components read. Only this module knows the worker exists.

use super::helper::{self, HelperState};
use super::i18n::I18n;
use crate::browser::js_error_text;
use crate::browser::now_ms;
use crate::i18n::Msg;
use crate::protocol::{Event, FailureKind, Prediction, ReadyInfo, Request};
use leptos::prelude::*;
use model::explain::{merge, Explanation};
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
    Failed(Problem),
}

impl Status {
    /// The machine word of `data-testid="model-status"` (its `data-status`).
    pub fn word(&self) -> &'static str {
        match self {
            Status::Starting | Status::Loading { .. } => "loading",
            Status::Ready => "ready",
            Status::Failed(_) => "error",
        }
    }
}

/// Something that went wrong, kept as data so the page says it in the current language.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The worker's report, with its (technical) message.
    Worker(FailureKind, String),
    /// The worker could not be started.
    NotStarted(String),
    /// The worker died (most often out of memory).
    Stopped(String),
    /// A message could not be posted to the worker.
    Unreachable(String),
}

/// A one-line announcement under the header.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The manifest could not be fetched: the cached model runs.
    OfflineModel {
        version: String,
    },
    /// A new model version was published and is now loaded.
    NewModel {
        version: String,
        was: String,
    },
    CacheCleared {
        removed: usize,
    },
    /// A new build of the page was deployed since the last visit.
    NewApp {
        build: String,
        was: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    Idle,
    Running { id: u64, text: String },
    Done { id: u64, text: String, prediction: Prediction, elapsed_ms: f64 },
    Failed(Problem),
}

impl Analysis {
    /// The text being analysed or shown.
    pub fn text(&self) -> Option<&str> {
        match self {
            Analysis::Running { text, .. } | Analysis::Done { text, .. } => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BatchRun {
    Idle,
    Running { id: u64, done: usize, total: usize },
    Done { id: u64, predictions: Vec<Prediction>, elapsed_ms: f64 },
    Cancelled { done: usize, total: usize },
    Failed(Problem),
}

/// What an explanation is for: the single post, or a batch row (by its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainTarget {
    Post,
    Row(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExplainRun {
    Idle,
    Running {
        id: u64,
        target: ExplainTarget,
        text: String,
        done: usize,
        total: usize,
    },
    /// `elapsed_ms` from the request to the last part; `workers` that shared it.
    Done {
        id: u64,
        target: ExplainTarget,
        text: String,
        explanation: Explanation,
        elapsed_ms: f64,
        workers: usize,
    },
    Failed {
        target: ExplainTarget,
        problem: Problem,
    },
}

/// The parts of the explanation under way: one per worker.
#[derive(Debug, Clone)]
struct ExplainParts {
    id: u64,
    started_ms: f64,
    parts: Vec<Option<Explanation>>,
    progress: Vec<(usize, usize)>,
}

impl ExplainRun {
    pub fn target(&self) -> Option<ExplainTarget> {
        match self {
            ExplainRun::Idle => None,
            ExplainRun::Running { target, .. }
            | ExplainRun::Done { target, .. }
            | ExplainRun::Failed { target, .. } => Some(*target),
        }
    }
}

/// Everything the page knows about the model; `Copy`, so components take it from context.
#[derive(Clone, Copy)]
pub struct Model {
    pub status: RwSignal<Status>,
    pub info: RwSignal<Option<ReadyInfo>>,
    pub analysis: RwSignal<Analysis>,
    pub batch: RwSignal<BatchRun>,
    pub explain: RwSignal<ExplainRun>,
    /// A one-line announcement (new version, cache cleared, offline start).
    pub notice: RwSignal<Option<Notice>>,
    /// The second worker that shares explanations (`helper`).
    pub helper: RwSignal<HelperState>,
    /// Explanations asked for, so the helper stops only when none came for a while.
    helper_uses: StoredValue<u64>,
    explain_parts: StoredValue<Option<ExplainParts>>,
    next_id: StoredValue<u64>,
    bundle_url: StoredValue<String>,
    /// Requests made before the worker said `Started`.
    queued: StoredValue<Option<Vec<Request>>>,
    /// Whether the worker was asked to start (`ensure_started`).
    started: StoredValue<bool>,
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
    /// The model at `bundle_url`, not started yet: the monitor view never needs it, and loading
    /// it costs a visitor the bundle's download (~135 MB for RoBERTa-base) and its memory.
    pub fn new(bundle_url: String) -> Model {
        Model {
            status: RwSignal::new(Status::Starting),
            info: RwSignal::new(None),
            analysis: RwSignal::new(Analysis::Idle),
            batch: RwSignal::new(BatchRun::Idle),
            explain: RwSignal::new(ExplainRun::Idle),
            notice: RwSignal::new(None),
            helper: RwSignal::new(HelperState::Off),
            helper_uses: StoredValue::new(0),
            explain_parts: StoredValue::new(None),
            next_id: StoredValue::new(1),
            bundle_url: StoredValue::new(bundle_url),
            queued: StoredValue::new(Some(Vec::new())),
            started: StoredValue::new(false),
        }
    }

    /// Starts the worker (or adopts the one `index.html` started) and asks it to load the
    /// bundle, the first time it is called.
    pub fn ensure_started(self) {
        if self.started.get_value() {
            return;
        }
        self.started.set_value(true);
        match self.spawn_worker() {
            Ok(()) => self.send(&Request::Load { bundle_url: self.bundle_url() }),
            Err(e) => self.status.set(Status::Failed(Problem::NotStarted(e))),
        }
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
        self.fail_everything(Problem::Stopped(ev.message()));
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
            self.fail_everything(Problem::Unreachable(e));
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
        self.analysis.set(Analysis::Running { id, text: text.clone() });
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

    /// Explains `text` (one explanation at a time: a running one is cancelled), in the main
    /// worker and, once it is ready, the helper (each runs half of the batches).
    pub fn explain(&self, target: ExplainTarget, text: String) {
        self.cancel_explain();
        let id = self.fresh_id();
        let workers = if self.helper.get_untracked() == HelperState::Ready { 2 } else { 1 };
        self.explain.set(ExplainRun::Running { id, target, text: text.clone(), done: 0, total: 0 });
        self.explain_parts.set_value(Some(ExplainParts {
            id,
            started_ms: now_ms(),
            parts: vec![None; workers],
            progress: vec![(0, 0); workers],
        }));
        self.send(&Request::Explain { id, text: text.clone(), part: 0, parts: workers });
        if workers == 2 {
            if let Err(e) = helper::post(&Request::Explain { id, text, part: 1, parts: 2 }) {
                return self.helper_failed(e);
            }
        } else {
            self.start_helper();
        }
        self.keep_helper();
    }

    pub fn cancel_explain(&self) {
        if let ExplainRun::Running { id, .. } = self.explain.get_untracked() {
            self.send(&Request::Cancel { id });
            let _ = helper::post(&Request::Cancel { id });
            self.explain_parts.set_value(None);
            self.explain.set(ExplainRun::Idle);
        }
    }

    /// Starts the helper worker, where the device can afford it, for the next explanations.
    fn start_helper(&self) {
        if self.helper.get_untracked() != HelperState::Off || !helper::allowed() {
            return;
        }
        let model = *self;
        let started = helper::spawn(
            &worker_url(),
            move |event| model.on_helper_event(event),
            move |e| model.helper_failed(format!("the helper worker stopped: {e}")),
        );
        match started {
            Ok(()) => self.helper.set(HelperState::Loading),
            Err(e) => self.helper_failed(e),
        }
    }

    fn on_helper_event(&self, event: Event) {
        match event {
            Event::Started => {
                if let Err(e) = helper::post(&Request::Load { bundle_url: self.bundle_url() }) {
                    self.helper_failed(e);
                }
            }
            Event::Ready(_) => self.helper.set(HelperState::Ready),
            Event::ExplainProgress { id, done, total } => self.explain_progress(1, id, done, total),
            Event::Explained { id, explanation, .. } => self.explain_part(1, id, explanation),
            Event::Failed { message, .. } => self.helper_failed(message),
            _ => {}
        }
    }

    /// The helper is gone for this visit; an explanation it was sharing runs again in the main
    /// worker alone.
    fn helper_failed(&self, why: String) {
        web_sys::console::warn_1(&format!("explanations stay in one worker: {why}").into());
        helper::stop();
        self.helper.set(HelperState::Broken);
        if let (Some(parts), ExplainRun::Running { id, target, text, .. }) =
            (self.explain_parts.get_value(), self.explain.get_untracked())
        {
            if parts.id == id && parts.parts.len() == 2 {
                self.explain(target, text);
            }
        }
    }

    /// Stops the helper once no explanation was asked for in `helper::IDLE`.
    fn keep_helper(&self) {
        let uses = self.helper_uses.get_value() + 1;
        self.helper_uses.set_value(uses);
        let model = *self;
        set_timeout(
            move || {
                // A later explanation restarted the clock.
                if model.helper_uses.get_value() != uses {
                    return;
                }
                if model.explain.with_untracked(|e| matches!(e, ExplainRun::Running { .. })) {
                    return model.keep_helper();
                }
                if matches!(model.helper.get_untracked(), HelperState::Loading | HelperState::Ready) {
                    helper::stop();
                    model.helper.set(HelperState::Off);
                }
            },
            helper::IDLE,
        );
    }

    fn explain_progress(&self, part: usize, id: u64, done: usize, total: usize) {
        let Some(mut parts) = self.explain_parts.get_value().filter(|p| p.id == id) else { return };
        let Some(slot) = parts.progress.get_mut(part) else { return };
        *slot = (done, total);
        let (done, total) = parts.progress.iter().fold((0, 0), |(d, t), &(a, b)| (d + a, t + b));
        self.explain_parts.set_value(Some(parts));
        self.explain.update(|e| {
            if let ExplainRun::Running { id: r, done: d, total: t, .. } = e {
                if *r == id {
                    (*d, *t) = (done, total);
                }
            }
        });
    }

    /// A worker's part of explanation `id`; the explanation once every part is in.
    fn explain_part(&self, part: usize, id: u64, explanation: Explanation) {
        let Some(mut parts) = self.explain_parts.get_value().filter(|p| p.id == id) else { return };
        let Some(slot) = parts.parts.get_mut(part) else { return };
        *slot = Some(explanation);
        if parts.parts.iter().any(Option::is_none) {
            return self.explain_parts.set_value(Some(parts));
        }
        self.explain_parts.set_value(None);
        let workers = parts.parts.len();
        let elapsed_ms = now_ms() - parts.started_ms;
        let whole = merge(parts.parts.into_iter().flatten().collect()).filter(Explanation::is_complete);
        if let ExplainRun::Running { id: r, target, text, .. } = self.explain.get_untracked() {
            if r == id {
                self.explain.set(match whole {
                    Some(explanation) => ExplainRun::Done { id, target, text, explanation, elapsed_ms, workers },
                    None => ExplainRun::Failed {
                        target,
                        problem: Problem::Worker(FailureKind::Inference, "the explanation's parts do not fit".into()),
                    },
                });
            }
        }
    }

    pub fn clear_cache(&self) {
        self.send(&Request::ClearCache);
    }

    fn fail_everything(&self, problem: Problem) {
        self.status.set(Status::Failed(problem.clone()));
        if matches!(self.analysis.get_untracked(), Analysis::Running { .. }) {
            self.analysis.set(Analysis::Failed(problem.clone()));
        }
        if matches!(self.batch.get_untracked(), BatchRun::Running { .. }) {
            self.batch.set(BatchRun::Failed(problem.clone()));
        }
        if let ExplainRun::Running { target, .. } = self.explain.get_untracked() {
            self.explain.set(ExplainRun::Failed { target, problem });
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
                let version = info.manifest.version.clone();
                let notice = match (&info.replaced, info.offline) {
                    (_, true) => Some(Notice::OfflineModel { version }),
                    (Some(old), _) => Some(Notice::NewModel { version, was: old.clone() }),
                    _ => None,
                };
                // A new-app notice from this visit's start stays unless the model has news.
                if notice.is_some() {
                    self.notice.set(notice);
                }
                self.info.set(Some(*info));
                self.status.set(Status::Ready);
            }
            Event::Analyzed { id, prediction, elapsed_ms } => {
                if let Analysis::Running { id: r, text } = self.analysis.get_untracked() {
                    if r == id {
                        self.analysis.set(Analysis::Done { id, text, prediction, elapsed_ms });
                    }
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
            Event::ExplainProgress { id, done, total } => self.explain_progress(0, id, done, total),
            Event::Explained { id, explanation, .. } => self.explain_part(0, id, explanation),
            // The page already moved on when it cancelled.
            Event::ExplainCancelled { .. } => {}
            Event::CacheCleared { removed } => self.notice.set(Some(Notice::CacheCleared { removed })),
            Event::Failed { id: Some(id), kind, message } => {
                let problem = Problem::Worker(kind, message);
                match (self.analysis.get_untracked(), self.explain.get_untracked()) {
                    (Analysis::Running { id: r, .. }, _) if r == id => self.analysis.set(Analysis::Failed(problem)),
                    (_, ExplainRun::Running { id: r, target, .. }) if r == id => {
                        self.explain.set(ExplainRun::Failed { target, problem })
                    }
                    _ => self.update_batch(id, BatchRun::Failed(problem)),
                }
            }
            Event::Failed { id: None, kind, message } => {
                self.status.set(Status::Failed(Problem::Worker(kind, message)))
            }
        }
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

/// A problem in the current language, with what the user can do about it (tracked).
pub fn describe(i: I18n, problem: &Problem) -> String {
    let detail = |m: Msg, d: &str| i.f(m, &[("detail", d)]);
    match problem {
        Problem::Worker(kind, message) => match kind {
            FailureKind::Fetch => detail(Msg::ProblemFetch, message),
            FailureKind::Integrity => detail(Msg::ProblemIntegrity, message),
            FailureKind::Bundle => detail(Msg::ProblemBundle, message),
            FailureKind::NotReady => i.t(Msg::ProblemNotReady).to_string(),
            FailureKind::Inference => detail(Msg::ProblemInference, message),
            FailureKind::Protocol => detail(Msg::ProblemProtocol, message),
        },
        Problem::NotStarted(e) => detail(Msg::ProblemNotStarted, e),
        Problem::Stopped(e) => detail(Msg::ProblemStopped, e),
        Problem::Unreachable(e) => detail(Msg::ProblemUnreachable, e),
    }
}
