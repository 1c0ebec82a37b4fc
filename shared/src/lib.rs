//! Pure code shared by the browser worker, `sentiment-server` and `sentiment-trainer`.
//!
//! Nothing in this crate touches the file system, the network or the clock: callers pass
//! bytes, tensors and timestamps in, so the same code runs natively and in wasm.

pub mod bundle;
pub mod config;
pub mod feedback;
pub mod model;
pub mod preprocess;
pub mod tokenize;

pub use bundle::{Manifest, BUNDLE_FORMAT_VERSION};
pub use config::{Architecture, ModelConfig};
pub use feedback::{FeedbackRecord, FeedbackSubmission};
pub use preprocess::Preprocess;

/// The label set of the production model, in `id2label` order.
pub const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// Lower-case hex sha256 of `bytes`, as written in the bundle manifest.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
