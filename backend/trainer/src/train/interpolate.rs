//! Weight-space interpolation between a model and its fine-tune (WiSE-FT, Wortsman et al. 2022):
//! `θ(α) = (1 − α)·θ_from + α·θ_to`. Fine-tuning from a shared start keeps both ends in one
//! basin, so the weights in between behave as a blend of the two models: α = 1 is the fine-tune,
//! α = 0 the start, and on the way most of the new domain is usually learned long before the old
//! one is forgotten. `nightly` picks α per night on its guard set and feedback validation split.

use super::state::write_hf_checkpoint;
use super::TrainError;
use crate::checkpoint::{Checkpoint, LoadOptions};
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// `(1 − alpha)·from + alpha·to`, tensor by tensor. Both must hold the same names and shapes
/// (two checkpoints of one architecture and label set).
pub fn interpolate(
    from: &HashMap<String, Tensor>,
    to: &HashMap<String, Tensor>,
    alpha: f64,
) -> Result<HashMap<String, Tensor>, TrainError> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(TrainError::Invalid(format!("the mixing weight must be in [0, 1], got {alpha}")));
    }
    if let Some(name) = to.keys().find(|k| !from.contains_key(*k)) {
        return Err(TrainError::Invalid(format!("cannot interpolate: {name} is only in the fine-tuned model")));
    }
    let mut out = HashMap::with_capacity(from.len());
    for (name, a) in from {
        let b = to
            .get(name)
            .ok_or_else(|| TrainError::Invalid(format!("cannot interpolate: {name} is only in the base model")))?;
        if a.shape() != b.shape() {
            return Err(TrainError::Invalid(format!(
                "cannot interpolate {name}: shapes {:?} and {:?} differ",
                a.dims(),
                b.dims()
            )));
        }
        let mixed = match alpha {
            0.0 => a.clone(),
            1.0 => b.clone(),
            _ => (a.affine(1.0 - alpha, 0.0)? + b.affine(alpha, 0.0)?)?,
        };
        out.insert(name.clone(), mixed);
    }
    Ok(out)
}

/// Interpolates two HF checkpoint directories of one model and writes the result to `out` as an
/// HF checkpoint (the tokenizer is `to`'s).
pub fn interpolate_checkpoints(from: &Path, to: &Path, alpha: f64, out: &Path) -> Result<(), TrainError> {
    let a = Checkpoint::load(from, &LoadOptions::default())?;
    let b = Checkpoint::load(to, &LoadOptions::default())?;
    if a.config != b.config {
        return Err(TrainError::Invalid(format!(
            "{} and {} are not the same model (their config.json differ)",
            from.display(),
            to.display()
        )));
    }
    let mixed = interpolate(&a.weights.tensors, &b.weights.tensors, alpha)?;
    write_hf_checkpoint(out, &b.config, &mixed.into_iter().collect(), &b.encoder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn tensors(pairs: &[(&str, &[f32])]) -> HashMap<String, Tensor> {
        pairs.iter().map(|(n, v)| (n.to_string(), Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap())).collect()
    }

    #[test]
    fn mixes_each_tensor_and_keeps_the_ends_exact() {
        let a = tensors(&[("w", &[1.0, -2.0, 0.1]), ("b", &[4.0])]);
        let b = tensors(&[("w", &[3.0, 2.0, 0.3]), ("b", &[0.0])]);
        let mid = interpolate(&a, &b, 0.25).unwrap();
        assert_eq!(mid["w"].to_vec1::<f32>().unwrap(), [1.5, -1.0, 0.15]);
        assert_eq!(mid["b"].to_vec1::<f32>().unwrap(), [3.0]);
        for (alpha, end) in [(0.0, &a), (1.0, &b)] {
            let m = interpolate(&a, &b, alpha).unwrap();
            assert_eq!(m["w"].to_vec1::<f32>().unwrap(), end["w"].to_vec1::<f32>().unwrap());
        }
    }

    #[test]
    fn refuses_models_that_do_not_match() {
        let a = tensors(&[("w", &[1.0, 2.0])]);
        let e = interpolate(&a, &tensors(&[("w", &[1.0, 2.0, 3.0])]), 0.5).unwrap_err().to_string();
        assert!(e.contains("shapes"), "{e}");
        let e = interpolate(&a, &tensors(&[("w", &[1.0, 2.0]), ("v", &[0.0])]), 0.5).unwrap_err().to_string();
        assert!(e.contains("v is only in the fine-tuned model"), "{e}");
        let e = interpolate(&a, &tensors(&[("v", &[0.0, 1.0])]), 0.5).unwrap_err().to_string();
        assert!(e.contains("only in"), "{e}");
        assert!(interpolate(&a, &a, 1.5).is_err());
    }
}
