//! `sentiment-trainer import`: a checkpoint (Hub or local) in, a model bundle out.

use crate::checkpoint::{Checkpoint, CheckpointError};
use model::calibration::calibrate;
use model::tokenize::TokenizeError;
use model::{quantize_to_gguf, GgufError, ModelError, Quantization};
use shared::bundle::{
    CalibrationNote, FileEntry, Manifest, Source, BUNDLE_FORMAT_VERSION, MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BundleWriteError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("calibrating the quantization: {0}")]
    Calibration(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// What goes into the manifest besides the model itself.
pub struct BundleInfo {
    pub source: Source,
    pub quantization: Quantization,
    pub version: Option<String>,
    pub parent_version: Option<String>,
    pub created_at: String,
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub lineage: Option<serde_json::Value>,
    /// Sample texts for calibrated (GPTQ) quantization; only q4k uses them.
    pub calibration: Option<CalibrationTexts>,
}

/// Calibration texts used by default: ~15 k tokens of tweets. Measured on all-MiniLM-L6-v2
/// fine-tuned on TweetEval (README, "Quantization").
pub const CALIBRATION_TEXTS: usize = 512;

/// Texts like the ones the model will see, and the dataset they came from (for the manifest).
pub struct CalibrationTexts {
    pub texts: Vec<String>,
    pub source: String,
}

impl CalibrationTexts {
    /// At most `n` of `texts`, evenly spread over them (datasets are often sorted by source or
    /// date, so the first `n` would be a biased sample).
    pub fn sample(texts: Vec<String>, n: usize, source: String) -> Self {
        let texts = if texts.len() <= n { texts } else { (0..n).map(|i| texts[i * texts.len() / n].clone()).collect() };
        CalibrationTexts { texts, source }
    }
}

/// What `write_bundle` is busy with, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Running the float model over the calibration texts.
    Calibrating,
    Quantizing,
}

/// Quantizes the checkpoint and writes `model.gguf`, `tokenizer.json` and, last,
/// `manifest.json` into `out`. Each file is written to a temporary name, synced and renamed,
/// so a reader never sees a manifest that lists files not yet complete.
pub fn write_bundle(
    ck: &Checkpoint,
    info: BundleInfo,
    out: &Path,
    mut progress: impl FnMut(Stage, usize, usize),
) -> Result<Manifest, BundleWriteError> {
    // GPTQ writes q4k's types; q8_0 is rotated instead (`model::gguf`).
    let calibration = match &info.calibration {
        Some(c) if info.quantization == Quantization::Q4K && !c.texts.is_empty() => {
            let ids = ck.encoder.encode_all(&c.texts)?;
            let moments = calibrate(&ck.config, &ck.weights.tensors, &ids, |done, total| {
                progress(Stage::Calibrating, done, total)
            })?;
            let note = CalibrationNote { method: "gptq".into(), texts: c.texts.len(), source: c.source.clone() };
            Some((moments, note))
        }
        _ => None,
    };
    let gguf = quantize_to_gguf(
        &ck.config,
        &ck.weights.tensors,
        info.quantization,
        calibration.as_ref().map(|(m, _)| m),
        |done, total| progress(Stage::Quantizing, done, total),
    )?;
    let calibration = calibration.map(|(_, note)| note);
    let tokenizer = ck.encoder.to_json()?;
    let mut files = BTreeMap::new();
    files.insert(MODEL_FILE.to_string(), Manifest::entry(&gguf));
    files.insert(TOKENIZER_FILE.to_string(), Manifest::entry(tokenizer.as_bytes()));
    let version = info.version.unwrap_or_else(|| default_version(&info.created_at, &files[MODEL_FILE]));
    let manifest = Manifest {
        format_version: BUNDLE_FORMAT_VERSION,
        version,
        parent_version: info.parent_version,
        source: info.source,
        labels: ck.config.labels.clone(),
        config: ck.config.clone(),
        quantization: info.quantization,
        preprocessing: ck.encoder.preprocess(),
        tokenizer: TOKENIZER_FILE.to_string(),
        files,
        created_at: info.created_at,
        metrics: info.metrics,
        lineage: info.lineage,
        calibration,
    };
    std::fs::create_dir_all(out).map_err(|source| BundleWriteError::Io { path: out.to_path_buf(), source })?;
    write_durably(&out.join(MODEL_FILE), &gguf)?;
    drop(gguf);
    write_durably(&out.join(TOKENIZER_FILE), tokenizer.as_bytes())?;
    write_durably(&out.join(MANIFEST_FILE), manifest.to_json().as_bytes())?;
    Ok(manifest)
}

/// `YYYYMMDD-HHMMSS-<first 8 hex of the model's sha256>`: sortable by time, unique per model.
fn default_version(created_at: &str, model: &FileEntry) -> String {
    let digits: String = created_at.chars().filter(|c| c.is_ascii_digit()).take(14).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{date}-{time}-{}", &model.sha256[..8])
}

/// Writes `bytes` to `path` through a temporary file, fsyncs it, renames it into place and
/// fsyncs the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), BundleWriteError> {
    let io = |source| BundleWriteError::Io { path: path.to_path_buf(), source };
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
