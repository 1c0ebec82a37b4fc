//! `train` is reproducible and resumable on the tiny RoBERTa:
//! - same seed + same data → bit-identical weights (dropout on, masks seeded); another seed → not;
//! - acceptance 6: `kill -9` during `train`, then `--resume`, ends with the same bytes in
//!   `model.safetensors` as an uninterrupted run.

mod common;

use sentiment_trainer::train::state::read_state;
use sentiment_trainer::train::{train, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("st-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` short labelled texts, deterministic; the label follows a keyword so there is signal.
fn dataset(dir: &Path, n: usize) -> PathBuf {
    let words = ["the", "movie", "was", "day", "team", "game", "food", "show", "today", "really", "so", "quite"];
    let keys = [("awful", "negative"), ("fine", "neutral"), ("great", "positive")];
    let mut s = String::new();
    let mut x: u64 = 12345;
    for i in 0..n {
        let mut text = Vec::new();
        for _ in 0..(3 + i % 9) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            text.push(words[(x >> 33) as usize % words.len()]);
        }
        let (k, label) = keys[i % 3];
        text.insert((x >> 40) as usize % text.len(), k);
        s.push_str(&serde_json::json!({"text": text.join(" "), "label": label}).to_string());
        s.push('\n');
    }
    let p = dir.join("data.jsonl");
    std::fs::write(&p, s).unwrap();
    p
}

fn options(data: &Path, out: &Path, seed: u64) -> TrainOptions {
    TrainOptions {
        epochs: 2,
        lr: 1e-3,
        batch_size: 8,
        seed,
        checkpoint_every: 5,
        ..TrainOptions::new(common::fixture("tiny-roberta-bpe"), vec![data.to_path_buf()], out.to_path_buf())
    }
}

#[test]
fn same_seed_same_data_same_weights() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("determinism");
    let data = dataset(&dir, 60);
    let runs: Vec<Vec<u8>> = [("a", 7), ("b", 7), ("c", 8)]
        .iter()
        .map(|(name, seed)| {
            let out = dir.join(name);
            let s = train(&options(&data, &out, *seed), |_| {}).unwrap();
            assert_eq!(s.steps, 16);
            std::fs::read(out.join("model.safetensors")).unwrap()
        })
        .collect();
    assert!(runs[0] == runs[1], "same seed and data gave different weights");
    assert!(runs[0] != runs[2], "a different seed should change dropout and order");
    // The output is a loadable checkpoint that differs from the base.
    let base = std::fs::read(common::fixture("tiny-roberta-bpe/model.safetensors")).unwrap();
    assert!(runs[0] != base);
    let p = sentiment_trainer::predict::Predictor::open(&dir.join("a"), Default::default()).unwrap();
    assert_eq!(p.labels(), ["negative", "neutral", "positive"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn in_process_resume_from_a_step_checkpoint_is_bit_identical() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("resume-inproc");
    let data = dataset(&dir, 60);
    let full = dir.join("full");
    train(&options(&data, &full, 3), |_| {}).unwrap();
    // Simulate a crash after step 10 (a step checkpoint, mid-epoch 2): stop by panicking out
    // of the progress callback, then resume.
    let part = dir.join("part");
    let r = std::panic::catch_unwind(|| {
        train(&options(&data, &part, 3), |p| {
            if p.step == 12 {
                panic!("simulated crash");
            }
        })
    });
    assert!(r.is_err());
    let (state, _) = read_state(&part).unwrap().unwrap();
    assert_eq!(state.step, 10);
    let s = train(&TrainOptions { resume: true, ..options(&data, &part, 3) }, |_| {}).unwrap();
    assert_eq!(s.resumed_from_step, 10);
    assert_eq!(
        std::fs::read(full.join("model.safetensors")).unwrap(),
        std::fs::read(part.join("model.safetensors")).unwrap()
    );
    // The metrics log has each step once.
    let steps: Vec<u64> = std::fs::read_to_string(part.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?.get("loss").map(|_| l.to_string()))
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=16).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

fn trainer() -> Command {
    let exe = env!("CARGO_BIN_EXE_sentiment-trainer");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("train "),
        "{exe} has no train subcommand (overwritten by a build of another checkout sharing the target dir?)"
    );
    Command::new(exe)
}

fn train_args(cmd: &mut Command, data: &Path, out: &Path) {
    cmd.args(["train", "--base"]).arg(common::fixture("tiny-roberta-bpe"));
    cmd.arg("--data").arg(data).arg("--out").arg(out);
    cmd.args(["--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--seed", "11", "--checkpoint-every", "10"]);
    cmd.args(["--threads", "2"]).stdout(Stdio::null()).stderr(Stdio::null());
}

#[test]
fn kill_9_then_resume_gives_the_uninterrupted_weights() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("kill9");
    let data = dataset(&dir, 1200); // 150 steps
    let full = dir.join("full");
    let mut cmd = trainer();
    train_args(&mut cmd, &data, &full);
    assert!(cmd.status().unwrap().success());

    let crashed = dir.join("crashed");
    let mut cmd = trainer();
    train_args(&mut cmd, &data, &crashed);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let killed_at = loop {
        if let Ok(Some((state, _))) = read_state(&crashed) {
            if state.step >= 20 {
                child.kill().unwrap(); // SIGKILL
                break state.step;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "training finished before it could be killed");
        assert!(Instant::now() < deadline, "no step checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.wait().unwrap();
    let (state, _) = read_state(&crashed).unwrap().unwrap();
    assert!(state.step >= killed_at && state.step < state.total_steps, "killed mid-training: {state:?}");
    eprintln!("killed at step {} of {}", state.step, state.total_steps);

    let mut cmd = trainer();
    train_args(&mut cmd, &data, &crashed);
    cmd.arg("--resume");
    assert!(cmd.status().unwrap().success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(crashed.join("summary.json")).unwrap()).unwrap();
    assert!(summary["resumed_from_step"].as_u64().unwrap() >= 20);
    assert!(
        std::fs::read(full.join("model.safetensors")).unwrap()
            == std::fs::read(crashed.join("model.safetensors")).unwrap(),
        "resumed weights differ from the uninterrupted run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
