//! Reading a Hub-layout checkpoint directory: `config.json`, `model.safetensors` or
//! `pytorch_model.bin`, and tokenizer files.

use candle_core::{Device, Tensor};
use model::tokenize::{build_tokenizer, TextEncoder, TokenizeError, TokenizerFiles};
use model::weights::{normalize, Normalized, WeightsError};
use shared::config::{ConfigError, ModelConfig};
use shared::Preprocess;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Config { path: PathBuf, source: ConfigError },
    #[error("{}: no weights (expected model.safetensors or pytorch_model.bin)", dir.display())]
    NoWeights { dir: PathBuf },
    #[error("{}: not a readable {kind} file: {detail}", path.display())]
    Unreadable { path: PathBuf, kind: &'static str, detail: String },
    #[error("{}: {source}", path.display())]
    Weights { path: PathBuf, source: Box<WeightsError> },
    #[error("{}: {source}", dir.display())]
    Tokenizer { dir: PathBuf, source: TokenizeError },
}

/// Names of the files a checkpoint may hold, in order of preference per role.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
pub const TOKENIZER_FILES: [&str; 5] =
    ["tokenizer.json", "vocab.json", "merges.txt", "vocab.txt", "tokenizer_config.json"];

/// A checkpoint loaded into float tensors under canonical names.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub weights: Normalized,
    pub weights_file: PathBuf,
    pub encoder: TextEncoder,
}

/// How to read a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Labels for a fresh classification head (replacing any the checkpoint has).
    pub init_head: Option<Vec<String>>,
    /// Seed of the fresh head.
    pub head_seed: u64,
    pub preprocess: Preprocess,
}

pub fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io { path: path.to_path_buf(), source }),
    }
}

impl Checkpoint {
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Self, CheckpointError> {
        let config_path = dir.join("config.json");
        let config = ModelConfig::from_hf_json(&read_file(&config_path)?, opts.init_head.clone())
            .map_err(|source| CheckpointError::Config { path: config_path.clone(), source })?;
        let weights_file = WEIGHT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| CheckpointError::NoWeights { dir: dir.to_path_buf() })?;
        let seed = opts.init_head.as_ref().map(|_| opts.head_seed);
        let weights = load_weights(&weights_file, &config, seed)?;
        let encoder = load_encoder(dir, &config, opts.preprocess)?;
        Ok(Checkpoint { dir: dir.to_path_buf(), config, weights, weights_file, encoder })
    }
}

/// Reads a safetensors or PyTorch zip file one tensor at a time (never the whole file twice).
pub fn load_weights(
    path: &Path,
    config: &ModelConfig,
    init_head_seed: Option<u64>,
) -> Result<Normalized, CheckpointError> {
    let unreadable = |kind, e: candle_core::Error| CheckpointError::Unreadable {
        path: path.to_path_buf(),
        kind,
        detail: first_line(&e.to_string()),
    };
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let tensors: Vec<(String, Tensor)> = if is_safetensors {
        // SAFETY: the file is only read; a concurrent writer would be a user error.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }
            .map_err(|e| unreadable("safetensors", e))?;
        let mut names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        // Sorted, so the first problem reported is the same on every run.
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            let t = st.load(&n, &Device::Cpu).map_err(|e| unreadable("safetensors", e))?;
            out.push((n, t));
        }
        out
    } else {
        let pth = candle_core::pickle::PthTensors::new(path, None).map_err(|e| unreadable("PyTorch checkpoint", e))?;
        let mut names: Vec<String> = pth.tensor_infos().keys().cloned().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            let t = pth
                .get(&n)
                .map_err(|e| unreadable("PyTorch checkpoint", e))?
                .expect("name comes from the file's own index");
            out.push((n, t));
        }
        out
    };
    normalize(tensors, config, init_head_seed)
        .map_err(|source| CheckpointError::Weights { path: path.to_path_buf(), source: Box::new(source) })
}

/// Builds the text encoder from whichever tokenizer files the directory has.
pub fn load_encoder(dir: &Path, config: &ModelConfig, preprocess: Preprocess) -> Result<TextEncoder, CheckpointError> {
    let [tj, vj, mt, vt, tc] = TOKENIZER_FILES.map(|f| read_optional(&dir.join(f)));
    let (tj, vj, mt, vt, tc) = (tj?, vj?, mt?, vt?, tc?);
    let files = TokenizerFiles {
        tokenizer_json: tj.as_deref(),
        vocab_json: vj.as_deref(),
        merges_txt: mt.as_deref(),
        vocab_txt: vt.as_deref(),
        tokenizer_config_json: tc.as_deref(),
    };
    let tok_err = |source| CheckpointError::Tokenizer { dir: dir.to_path_buf(), source };
    let tok = build_tokenizer(files, config).map_err(tok_err)?;
    TextEncoder::new(tok, config, preprocess).map_err(tok_err)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
