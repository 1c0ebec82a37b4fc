//! Bad input never panics: each case gives one line on stderr naming the file or input line,
//! and a non-zero exit code.

mod common;

use common::fixture;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sentiment-trainer"))
}

/// A writable copy of the tiny RoBERTa fixture.
fn copy_fixture(tag: &str) -> PathBuf {
    let dst =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sm-bad-input-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture("tiny-roberta-bpe")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

/// Runs the trainer and checks the failure is one clean line mentioning `needle`.
fn fails_cleanly(cmd: &mut Command, stdin: Option<&[u8]>, needle: &str) {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure for {needle:?}; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "{needle:?} not in: {stderr}");
}

fn predict(dir: &Path) -> Command {
    let mut c = trainer();
    c.args(["predict", "--model"]).arg(dir).arg("some text");
    c
}

#[test]
fn missing_weights() {
    let d = copy_fixture("noweights");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    std::fs::remove_file(d.join("pytorch_model.bin")).unwrap();
    fails_cleanly(&mut predict(&d), None, "no weights");
}

#[test]
fn missing_config() {
    let d = copy_fixture("noconfig");
    std::fs::remove_file(d.join("config.json")).unwrap();
    fails_cleanly(&mut predict(&d), None, "config.json");
}

#[test]
fn truncated_safetensors() {
    let d = copy_fixture("truncst");
    let p = d.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    fails_cleanly(&mut predict(&d), None, "model.safetensors");
}

#[test]
fn corrupt_pytorch_zip() {
    let d = copy_fixture("corruptzip");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    let p = d.join("pytorch_model.bin");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 3..n / 3 + 4096].fill(0x5a);
    bytes.truncate(n - 100); // the zip's central directory is at the end
    std::fs::write(&p, &bytes).unwrap();
    fails_cleanly(&mut predict(&d), None, "pytorch_model.bin");
}

#[test]
fn unknown_model_type() {
    let d = copy_fixture("gpt2");
    let p = d.join("config.json");
    let cfg = std::fs::read_to_string(&p).unwrap().replace("\"roberta\"", "\"gpt2\"");
    std::fs::write(&p, cfg).unwrap();
    fails_cleanly(&mut predict(&d), None, "gpt2");
}

#[test]
fn shape_mismatch() {
    let d = copy_fixture("shape");
    let p = d.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    cfg["intermediate_size"] = 40.into();
    std::fs::write(&p, cfg.to_string()).unwrap();
    fails_cleanly(
        &mut predict(&d),
        None,
        "encoder.layer.0.intermediate.dense.bias\" has shape [37], but config.json implies [40]",
    );
}

#[test]
fn bundle_with_a_wrong_sha256() {
    let d = copy_fixture("bundle-src");
    let out = d.join("bundle");
    let st =
        trainer().args(["import", "--from"]).arg(&d).args(["--quant", "q8_0", "--out"]).arg(&out).status().unwrap();
    assert!(st.success());
    let p = out.join("model.gguf");
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    fails_cleanly(&mut predict(&out), None, "model.gguf");
}

#[test]
fn empty_and_invalid_utf8_input_lines() {
    let d = copy_fixture("stdin");
    let mut c = trainer();
    c.args(["predict", "--model"]).arg(&d);
    fails_cleanly(&mut c, Some(b"fine\n\nalso fine\n"), "stdin line 2");
    let mut c = trainer();
    c.args(["predict", "--model"]).arg(&d);
    fails_cleanly(&mut c, Some(b"fine\nbad \xff\xfe bytes\n"), "stdin line 2");
    // And the good case works, one JSON object per line.
    let out = trainer().args(["predict", "--json", "--model"]).arg(&d).args(["good", "bad"]).output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["text"], "good");
    assert_eq!(lines[0]["scores"].as_object().unwrap().len(), 3);
}

#[test]
fn eval_data_errors_name_the_line() {
    let d = copy_fixture("evaldata");
    let data = d.join("data.jsonl");
    std::fs::write(&data, "{\"text\": \"ok\", \"label\": \"positive\"}\n{\"text\": \"x\", \"label\": \"angry\"}\n")
        .unwrap();
    let mut c = trainer();
    c.args(["eval", "--model"]).arg(&d).arg("--data").arg(&data);
    fails_cleanly(&mut c, None, "data.jsonl:2");
}
