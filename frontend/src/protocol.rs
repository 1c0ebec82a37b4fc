//! The messages between the page and the model worker, sent as JSON strings through
//! `postMessage` (plain strings keep both sides independent of structured-clone quirks).

use model::explain::Explanation;
use serde::{Deserialize, Serialize};
use shared::Manifest;

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Fetch (or take from the cache) the bundle at `bundle_url` (absolute, ends with `/`).
    Load {
        bundle_url: String,
    },
    Analyze {
        id: u64,
        text: String,
    },
    Batch {
        id: u64,
        texts: Vec<String>,
    },
    /// Which words drove the prediction for `text` (`model::explain`): part `part` of
    /// `parts` (the page may share an explanation between two workers).
    Explain {
        id: u64,
        text: String,
        #[serde(default)]
        part: usize,
        #[serde(default = "one")]
        parts: usize,
    },
    /// Stop batch or explanation `id` after the forward pass in progress.
    Cancel {
        id: u64,
    },
    /// Drop every cached model file; the next load downloads again.
    ClearCache,
}

fn one() -> usize {
    1
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The worker's handler is installed. Messages posted before it would be lost (the wasm
    /// module initialises asynchronously), so the page queues requests until it sees this.
    Started,
    /// Overall download progress over the bundle's files (cached files count as loaded).
    Progress {
        loaded: u64,
        total: u64,
    },
    Ready(Box<ReadyInfo>),
    Analyzed {
        id: u64,
        prediction: Prediction,
        elapsed_ms: f64,
    },
    BatchProgress {
        id: u64,
        done: usize,
        total: usize,
    },
    /// Predictions in input order.
    BatchDone {
        id: u64,
        predictions: Vec<Prediction>,
        elapsed_ms: f64,
    },
    BatchCancelled {
        id: u64,
        done: usize,
    },
    /// Forward rows of explanation `id` run so far (one per word, plus the text).
    ExplainProgress {
        id: u64,
        done: usize,
        total: usize,
    },
    /// The weights of this worker's part (all of them when it ran the whole explanation).
    Explained {
        id: u64,
        explanation: Explanation,
        elapsed_ms: f64,
    },
    ExplainCancelled {
        id: u64,
    },
    CacheCleared {
        removed: usize,
    },
    /// `id` is the request's, or `None` for a failed load.
    Failed {
        id: Option<u64>,
        kind: FailureKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyInfo {
    pub manifest: Manifest,
    pub bundle_url: String,
    /// Every file came from the Cache API (nothing downloaded).
    pub from_cache: bool,
    /// The manifest could not be fetched and the last cached one was used.
    pub offline: bool,
    /// The version this one replaced in the cache, when it differs (a newly published model).
    pub replaced: Option<String>,
    /// Why the Cache API is not used, when it is not (e.g. a private window).
    pub cache_unavailable: Option<String>,
    pub load_ms: f64,
    /// The worker's wasm memory once loaded (it never shrinks, so this is its peak so far).
    #[serde(default)]
    pub wasm_memory_bytes: u64,
    /// The weight products' kernel: `simd128`, `relaxed-simd` (the 8-bit dot) or `candle`.
    #[serde(default)]
    pub kernel: String,
}

/// One text's result; `scores` follow the manifest's label order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub scores: Vec<f64>,
}

impl Prediction {
    pub fn top_score(&self) -> f64 {
        self.scores.iter().cloned().fold(0.0, f64::max)
    }
}

/// What went wrong, so the page can say what the user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A bundle file could not be fetched (network, HTTP status, CORS).
    Fetch,
    /// A file's size or sha256 differs from the manifest.
    Integrity,
    /// The manifest or a file is unreadable or from an unsupported format.
    Bundle,
    /// The model is not loaded yet, or failed to load.
    NotReady,
    /// Tokenizing or running the model failed.
    Inference,
    /// The request could not be decoded.
    Protocol,
}

impl Request {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("requests serialize")
    }
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let r = Request::Analyze { id: 7, text: "hi \"there\"".into() };
        let json = r.to_json();
        assert!(json.contains("\"type\":\"analyze\""), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
        let e = Event::Analyzed {
            id: 7,
            prediction: Prediction { label: "neutral".into(), scores: vec![0.25, 0.5, 0.25] },
            elapsed_ms: 1.5,
        };
        assert_eq!(serde_json::from_str::<Event>(&e.to_json()).unwrap(), e);
    }

    #[test]
    fn f32_scores_survive_the_json_trip_exactly() {
        // The page shows what the worker computed in f32; widening to f64 and back through JSON
        // must not move it (the end-to-end test compares with native output at 1e-4).
        let s = 0.123_456_79_f32;
        let p = Prediction { label: "x".into(), scores: vec![s as f64] };
        let back: Prediction = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.scores[0] as f32, s);
    }
}
