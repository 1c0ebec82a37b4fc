//! What training writes to disk: the HF-layout checkpoint (`config.json`, `model.safetensors`
//! with HF names, `tokenizer.json`) and the resumable training state (one safetensors file:
//! weights, Adam moments, and the step/seed/fingerprint as JSON metadata). Every file is
//! written to a temporary name, fsynced and renamed, so a crash leaves the previous version.

use super::optim::AdamW;
use super::TrainError;
use crate::bundle_writer::write_durably;
use candle_core::{Device, Tensor};
use model::tokenize::TextEncoder;
use serde::{Deserialize, Serialize};
use shared::config::{Architecture, ModelConfig};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const STATE_FILE: &str = "train-state.safetensors";
const STATE_KEY: &str = "sentiment_train_state";

/// The HF name of a canonical tensor name: the encoder's tensors carry the model prefix.
pub fn hf_name(canonical: &str, arch: Architecture) -> String {
    if canonical.starts_with("classifier") {
        return canonical.to_string();
    }
    match arch {
        Architecture::Roberta => format!("roberta.{canonical}"),
        Architecture::Bert => format!("bert.{canonical}"),
    }
}

fn serialize(tensors: &BTreeMap<String, Tensor>, metadata: HashMap<String, String>) -> Result<Vec<u8>, TrainError> {
    let contiguous: Vec<(String, Tensor)> =
        tensors.iter().map(|(k, t)| Ok((k.clone(), t.contiguous()?))).collect::<Result<_, TrainError>>()?;
    safetensors::serialize(contiguous.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
        .map_err(|e| TrainError::Invalid(format!("serializing tensors: {e}")))
}

/// Writes `config.json`, `model.safetensors` (HF names, `{"format": "pt"}`) and
/// `tokenizer.json` into `dir`: a checkpoint transformers loads with `from_pretrained`.
pub fn write_hf_checkpoint(
    dir: &Path,
    config: &ModelConfig,
    tensors: &BTreeMap<String, Tensor>,
    encoder: &TextEncoder,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io { path: dir.to_path_buf(), source })?;
    let named: BTreeMap<String, Tensor> =
        tensors.iter().map(|(k, t)| (hf_name(k, config.architecture), t.clone())).collect();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_durably(&dir.join("model.safetensors"), &serialize(&named, meta)?)?;
    write_durably(&dir.join("tokenizer.json"), encoder.to_json()?.as_bytes())?;
    let cfg = serde_json::to_string_pretty(&config.to_hf_json()).expect("json value");
    write_durably(&dir.join("config.json"), cfg.as_bytes())?;
    Ok(())
}

/// Where training stands; stored as JSON in the state file's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Updates done (also AdamW's step count).
    pub step: u64,
    pub total_steps: u64,
    /// The run's seed: with `step` it fixes every later shuffle and dropout mask.
    pub seed: u64,
    /// Hash of the options and data that determine the run; resuming requires the same.
    pub fingerprint: String,
}

/// Saves weights, Adam moments and `state` atomically into `dir/train-state.safetensors`.
pub fn save_state(dir: &Path, optimizer: &AdamW, state: &TrainState) -> Result<(), TrainError> {
    let mut tensors = BTreeMap::new();
    for p in &optimizer.params {
        tensors.insert(format!("param.{}", p.name), p.var.as_tensor().clone());
        let (m, v) = p.moments()?;
        tensors.insert(format!("adam_m.{}", p.name), m);
        tensors.insert(format!("adam_v.{}", p.name), v);
    }
    let meta = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(state).expect("state json"))]);
    write_durably(&dir.join(STATE_FILE), &serialize(&tensors, meta)?)?;
    Ok(())
}

/// A saved state: where training stood, and the tensors (`param.*`, `adam_m.*`, `adam_v.*`).
pub type SavedState = (TrainState, HashMap<String, Tensor>);

/// Reads the state file, if there is one.
pub fn read_state(dir: &Path) -> Result<Option<SavedState>, TrainError> {
    let path = dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(TrainError::Io { path, source }),
    };
    let bad = |detail: String| TrainError::State { path: path.clone(), detail };
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .ok_or_else(|| bad("no training state in the metadata".into()))?;
    let state: TrainState = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    Ok(Some((state, tensors)))
}

/// Puts saved weights and moments back into the optimizer's parameters.
pub fn restore(optimizer: &mut AdamW, state: &TrainState, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
    let get =
        |k: String| tensors.get(&k).cloned().ok_or_else(|| TrainError::Invalid(format!("training state lacks {k}")));
    for p in optimizer.params.iter_mut() {
        p.var.set(&get(format!("param.{}", p.name))?)?;
        p.set_moments(&get(format!("adam_m.{}", p.name))?, &get(format!("adam_v.{}", p.name))?)?;
    }
    optimizer.step = state.step;
    Ok(())
}
