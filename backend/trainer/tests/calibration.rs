//! Calibrated (GPTQ) quantization: the input moments it rests on, and `import --calibration`.

mod common;

use common::fixture;
use model::calibration::calibrate;
use sentiment_trainer::checkpoint::{Checkpoint, LoadOptions};
use shared::Preprocess;
use std::process::Command;

const TEXTS: [&str; 6] = [
    "I love it",
    "worst service ever, never again",
    "ok.",
    "meh 😐 https://t.co/x",
    "the new update is fine I guess, nothing special but it works",
    "!!!",
];

/// Moments collected from padded, length-sorted batches equal the sums of each text run alone:
/// padding never enters them. Every token counts once in the first layer, and query, key and
/// value (one input) get the same moments.
#[test]
fn moments_ignore_padding() {
    common::kernels_as_the_trainer_runs_them();
    let ck = Checkpoint::load(
        &fixture("tiny-roberta-bpe"),
        &LoadOptions { preprocess: Preprocess::None, ..Default::default() },
    )
    .unwrap();
    let ids = ck.encoder.encode_all(&TEXTS).unwrap();
    let batched = calibrate(&ck.config, &ck.weights.tensors, &ids, |_, _| {}).unwrap();
    assert_eq!(batched.texts, TEXTS.len());
    let alone: Vec<_> = ids
        .iter()
        .map(|t| calibrate(&ck.config, &ck.weights.tensors, std::slice::from_ref(t), |_, _| {}).unwrap())
        .collect();
    assert!(!batched.moments.is_empty());
    for (name, m) in &batched.moments {
        let count: usize = alone.iter().map(|c| c.moments[name].count).sum();
        assert_eq!(m.count, count, "{name}");
        for (i, &v) in m.sum.iter().enumerate() {
            let want: f32 = alone.iter().map(|c| c.moments[name].sum[i]).sum();
            assert!((v - want).abs() <= 1e-4 * want.abs().max(1.0), "{name}[{i}]: {v} batched, {want} alone");
        }
    }
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let q = &batched.moments["encoder.layer.0.attention.self.query.weight"];
    assert_eq!(q.count, tokens);
    assert_eq!(q.sum, batched.moments["encoder.layer.0.attention.self.value.weight"].sum);
}

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sentiment-trainer"))
}

/// `import --quant q4k --calibration DATA` records the calibration in the manifest, and the
/// bundle predicts; with another quantization the flag is refused in one line.
#[test]
fn import_with_calibration() {
    common::kernels_as_the_trainer_runs_them();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sm-calibration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("texts.jsonl");
    let lines: Vec<String> =
        TEXTS.iter().map(|t| serde_json::json!({"text": t, "label": "neutral"}).to_string()).collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let src = fixture("tiny-roberta-bpe");
    let out = dir.join("bundle");
    let run = |quant: &str| {
        trainer()
            .args(["import", "--from", src.to_str().unwrap(), "--quant", quant, "--calibration"])
            .arg(&data)
            .args(["--calibration-texts", "4", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let refused = run("q8_0");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--calibration"), "{err}");

    let done = run("q4k");
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["calibration"]["method"], "gptq");
    assert_eq!(manifest["calibration"]["texts"], 4);
    let predicted = trainer().args(["predict", "--json", "--model"]).arg(&out).arg("what a day").output().unwrap();
    assert!(predicted.status.success(), "{}", String::from_utf8_lossy(&predicted.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
