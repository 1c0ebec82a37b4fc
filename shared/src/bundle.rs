//! The model bundle: `manifest.json`, `model.gguf`, `tokenizer.json`. What `import` writes, the
//! browser worker reads (manifest first), and the trainer versions. Building the model from a
//! bundle's files is the `model` crate's (`model::bundle`).

use crate::config::ModelConfig;
use crate::preprocess::Preprocess;
use crate::quantization::Quantization;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when the bundle layout changes incompatibly. Version 2: quantized Linear weights may be
/// stored Hadamard-rotated (`kernels::rotation`), which a version-1 reader would use unrotated and
/// get wrong scores from, so it must refuse them.
pub const BUNDLE_FORMAT_VERSION: u32 = 2;
/// The oldest version this build still reads (version 1 is version 2 with nothing rotated).
pub const OLDEST_READABLE_FORMAT_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const MODEL_FILE: &str = "model.gguf";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: String,
}

/// Where the weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// A Hub repo id, or `local:<folder name>` for a checkpoint imported from disk (never a
    /// machine's path: the page shows it to every visitor). A challenger `nightly` trains names
    /// the model repo its parent version came from.
    pub repo_id: String,
    /// The Hub commit the files were resolved to, when known.
    pub revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// This bundle's version (unique per published model).
    pub version: String,
    pub parent_version: Option<String>,
    pub source: Source,
    pub config: ModelConfig,
    pub labels: Vec<String>,
    pub quantization: Quantization,
    pub preprocessing: Preprocess,
    /// The tokenizer file's name in the bundle.
    pub tokenizer: String,
    /// Name → size and sha256 of every other file in the bundle.
    pub files: BTreeMap<String, FileEntry>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Evaluation figures, when known (name → value).
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Free-form lineage (training data, base version, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<serde_json::Value>,
    /// How the quantization was calibrated, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationNote>,
}

/// Calibrated quantization: which method, on how many sample texts, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationNote {
    /// `gptq` (`model::gptq`).
    pub method: String,
    pub texts: usize,
    /// The dataset the texts were sampled from.
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("manifest.json is invalid: {0}")]
    Manifest(String),
    #[error(
        "manifest.json has format_version {0}; this build reads versions {OLDEST_READABLE_FORMAT_VERSION} to {BUNDLE_FORMAT_VERSION}"
    )]
    FormatVersion(u32),
    #[error("{file}: sha256 {got} does not match the manifest's {want}; the file is corrupt or from another version")]
    Hash { file: String, got: String, want: String },
    #[error("{file}: {got} bytes, but the manifest says {want}")]
    Size { file: String, got: u64, want: u64 },
    #[error("the manifest does not list {0}")]
    Unlisted(String),
}

impl Manifest {
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if !(OLDEST_READABLE_FORMAT_VERSION..=BUNDLE_FORMAT_VERSION).contains(&m.format_version) {
            return Err(BundleError::FormatVersion(m.format_version));
        }
        m.config.check().map_err(|e| BundleError::Manifest(e.to_string()))?;
        if m.labels != m.config.labels {
            return Err(BundleError::Manifest("labels differ from config.labels".into()));
        }
        for f in [MODEL_FILE, m.tokenizer.as_str()] {
            if !m.files.contains_key(f) {
                return Err(BundleError::Unlisted(f.to_string()));
            }
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serializes")
    }

    /// Refuses bytes whose size or sha256 differ from the manifest's entry for `file`.
    pub fn verify(&self, file: &str, bytes: &[u8]) -> Result<(), BundleError> {
        let entry = self.files.get(file).ok_or_else(|| BundleError::Unlisted(file.to_string()))?;
        if bytes.len() as u64 != entry.size {
            return Err(BundleError::Size { file: file.to_string(), got: bytes.len() as u64, want: entry.size });
        }
        let got = crate::sha256_hex(bytes);
        if got != entry.sha256 {
            return Err(BundleError::Hash { file: file.to_string(), got, want: entry.sha256.clone() });
        }
        Ok(())
    }

    /// Like `verify`, reading the file in pieces so it is never held in memory whole.
    pub fn verify_reader<R: std::io::Read>(&self, file: &str, reader: &mut R) -> Result<(), BundleError> {
        use sha2::Digest;
        if !self.files.contains_key(file) {
            return Err(BundleError::Unlisted(file.to_string()));
        }
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| BundleError::Manifest(format!("reading {file}: {e}")))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        let got = hex::encode(hasher.finalize());
        self.verify_digest(file, size, &got)
    }

    /// Checks a file's size and sha256 (lowercase hex), computed elsewhere (the browser's
    /// WebCrypto), against the manifest.
    pub fn verify_digest(&self, file: &str, size: u64, sha256: &str) -> Result<(), BundleError> {
        let entry = self.files.get(file).ok_or_else(|| BundleError::Unlisted(file.to_string()))?;
        if size != entry.size {
            return Err(BundleError::Size { file: file.to_string(), got: size, want: entry.size });
        }
        if sha256 != entry.sha256 {
            return Err(BundleError::Hash {
                file: file.to_string(),
                got: sha256.to_string(),
                want: entry.sha256.clone(),
            });
        }
        Ok(())
    }

    pub fn entry(bytes: &[u8]) -> FileEntry {
        FileEntry { size: bytes.len() as u64, sha256: crate::sha256_hex(bytes) }
    }
}
