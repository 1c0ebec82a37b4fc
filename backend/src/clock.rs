//! Wall-clock timestamps as RFC 3339 strings (UTC), without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as `YYYY-MM-DDTHH:MM:SS.mmmZ` (the form every stored timestamp has).
pub fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    shared::feedback::format_timestamp_millis(d.as_millis() as i64)
}
