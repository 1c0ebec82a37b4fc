//! The contracts shared by the browser, `sentiment-server` and `sentiment-trainer`: labels, the
//! feedback record and its API types, the bundle manifest, the model config and preprocessing,
//! the weight formats, Hub repo ids, the model store's registry and report index. Light on
//! purpose (serde, no candle, no tokenizers), so the server links no model code: the model is
//! the `model` crate (`shared/model`), its kernels the `kernels` crate (`shared/kernels`).
//!
//! Nothing in this crate touches the file system or the network, or reads the clock on its own:
//! callers pass bytes, timestamps and a [`Clock`] in, so the same code runs natively and in wasm.

pub mod bundle;
pub mod clock;
pub mod config;
pub mod feedback;
pub mod model_store;
pub mod preprocess;
pub mod quantization;
pub mod repo_id;

pub use bundle::{Manifest, BUNDLE_FORMAT_VERSION};
pub use clock::Clock;
pub use config::{Architecture, ModelConfig};
pub use feedback::{FeedbackRecord, FeedbackSubmission};
pub use preprocess::Preprocess;
pub use quantization::Quantization;
pub use repo_id::RepoId;

/// The label set of the production model, in `id2label` order.
pub const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// Lower-case hex sha256 of `bytes`, as written in the bundle manifest.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
