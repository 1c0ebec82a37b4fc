//! The browser app and its model worker.
//!
//! The page (`app`, bin `frontend`) never touches the model: it posts [`protocol::Request`]s to a
//! Web Worker (`worker`, bin `worker`) that fetches, verifies and caches the bundle and runs
//! `model`, answering with [`protocol::Event`]s. Everything that is plain logic — the
//! message types, batch input parsing and aggregation, the review queue's logic, the feedback
//! outbox, the catalogue of the page's words — compiles and is tested on the host too; the
//! browser-only parts exist only on wasm32.

pub mod batch;
pub mod bundle_url;
pub mod engine;
pub mod i18n;
pub mod monitor;
pub mod outbox;
pub mod protocol;
pub mod review;
pub mod warm_up;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(target_arch = "wasm32")]
pub mod worker;

/// Below this top score the page asks for feedback more insistently.
pub const UNSURE_THRESHOLD: f64 = 0.6;
