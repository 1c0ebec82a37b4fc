//! The one clock of the native programs. This crate never reads it on its own: the server and
//! the trainer pass a [`Clock`] (or a time) in, and tests pass one they control.

use crate::feedback::format_timestamp_millis;
use std::fmt;
use std::sync::Arc;

/// Milliseconds since the Unix epoch, from the system or from a test.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system's wall clock (not on wasm32, where the browser's clock is `Date.now()`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn system() -> Self {
        Clock::from_fn(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        })
    }

    pub fn from_fn(now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now_ms))
    }

    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }

    /// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form of every stored timestamp.
    pub fn now_rfc3339(&self) -> String {
        format_timestamp_millis(self.now_ms())
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}
