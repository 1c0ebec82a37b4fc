//! Checkpoint tensor names: the canonical names this crate uses, the variants real checkpoints
//! have, and the shapes a config implies.

use candle_core::{DType, Device, Tensor};
use shared::config::{Architecture, ModelConfig};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("the checkpoint lacks tensor {0:?}")]
    Missing(String),
    #[error("tensor {name:?} has shape {got:?}, but config.json implies {want:?}")]
    Shape { name: String, got: Vec<usize>, want: Vec<usize> },
    #[error("the checkpoint has no classification head ({0}); pass labels to add a fresh one")]
    NoHead(String),
    #[error("tensor {name:?}: {source}")]
    Tensor { name: String, source: candle_core::Error },
}

/// Canonical names and shapes of every tensor the classifier needs, head included.
pub fn expected_shapes(c: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    let (h, f) = (c.hidden_size, c.intermediate_size);
    let mut m = BTreeMap::new();
    let mut put = |k: String, s: Vec<usize>| {
        m.insert(k, s);
    };
    put("embeddings.word_embeddings.weight".into(), vec![c.vocab_size, h]);
    put("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, h]);
    put("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, h]);
    put("embeddings.LayerNorm.weight".into(), vec![h]);
    put("embeddings.LayerNorm.bias".into(), vec![h]);
    for i in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", f, h),
            ("output.dense", h, f),
        ] {
            put(format!("{p}.{name}.weight"), vec![out, inp]);
            put(format!("{p}.{name}.bias"), vec![out]);
        }
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(format!("{p}.{ln}.weight"), vec![h]);
            put(format!("{p}.{ln}.bias"), vec![h]);
        }
    }
    for (k, s) in head_shapes(c) {
        put(k, s);
    }
    m
}

/// The classification head's tensors: RoBERTa `dense` + `out_proj`, BERT `pooler` + `classifier`.
pub fn head_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (h, n) = (c.hidden_size, c.labels.len());
    match c.architecture {
        Architecture::Roberta => vec![
            ("classifier.dense.weight".into(), vec![h, h]),
            ("classifier.dense.bias".into(), vec![h]),
            ("classifier.out_proj.weight".into(), vec![n, h]),
            ("classifier.out_proj.bias".into(), vec![n]),
        ],
        Architecture::Bert => vec![
            ("pooler.dense.weight".into(), vec![h, h]),
            ("pooler.dense.bias".into(), vec![h]),
            ("classifier.weight".into(), vec![n, h]),
            ("classifier.bias".into(), vec![n]),
        ],
    }
}

/// Maps a checkpoint's tensor name to the canonical one, or `None` for tensors the classifier
/// does not use (the `position_ids` buffer, a RoBERTa pooler, a masked-LM head).
pub fn canonical_name(name: &str, arch: Architecture) -> Option<String> {
    let mut n = name;
    for prefix in ["roberta.", "bert.", "xlm-roberta.", "camembert.", "model."] {
        if let Some(rest) = n.strip_prefix(prefix) {
            n = rest;
            break;
        }
    }
    let n = if let Some(stem) = n.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = n.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        n.to_string()
    };
    let unused = n.ends_with("position_ids")
        || n.starts_with("lm_head.")
        || n.starts_with("cls.")
        || (arch == Architecture::Roberta && n.starts_with("pooler."));
    (!unused).then_some(n)
}

/// What `normalize` did with a checkpoint's tensors.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Canonical name → f32 tensor, checked against the config's shapes.
    pub tensors: HashMap<String, Tensor>,
    /// Tensors present in the checkpoint but unused.
    pub ignored: Vec<String>,
    /// True when the head was made fresh (`init_head_seed` was given and the head was absent).
    pub fresh_head: bool,
}

/// Renames, checks shapes and converts to f32. Missing head tensors are an error unless
/// `init_head_seed` is given, in which case a fresh head is made as transformers initialises
/// one (weights N(0, 0.02), biases zero), from that seed.
pub fn normalize(
    raw: impl IntoIterator<Item = (String, Tensor)>,
    config: &ModelConfig,
    init_head_seed: Option<u64>,
) -> Result<Normalized, WeightsError> {
    let want = expected_shapes(config);
    let mut out = Normalized::default();
    for (name, t) in raw {
        let Some(canon) = canonical_name(&name, config.architecture) else {
            out.ignored.push(name);
            continue;
        };
        let Some(shape) = want.get(&canon) else {
            out.ignored.push(name);
            continue;
        };
        if init_head_seed.is_some() && canon.starts_with("classifier.") {
            // A fresh head was asked for: whatever classifier the checkpoint has is replaced.
            // BERT's pooler belongs to the pretrained encoder and is kept.
            out.ignored.push(name);
            continue;
        }
        if t.dims() != shape.as_slice() {
            return Err(WeightsError::Shape { name, got: t.dims().to_vec(), want: shape.clone() });
        }
        let t = t.to_dtype(DType::F32).map_err(|source| WeightsError::Tensor { name: name.clone(), source })?;
        out.tensors.insert(canon, t);
    }
    if let Some(seed) = init_head_seed {
        let mut rng = SplitMix64(seed);
        for (name, shape) in head_shapes(config) {
            if out.tensors.contains_key(&name) {
                continue; // BERT's pooler is pretrained and kept.
            }
            let n: usize = shape.iter().product();
            let values: Vec<f32> =
                if name.ends_with(".bias") { vec![0.0; n] } else { (0..n).map(|_| 0.02 * rng.normal()).collect() };
            let t = Tensor::from_vec(values, shape, &Device::Cpu)
                .map_err(|source| WeightsError::Tensor { name: name.clone(), source })?;
            out.tensors.insert(name, t);
            out.fresh_head = true;
        }
    }
    let missing_head: Vec<&String> = head_shapes(config)
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !out.tensors.contains_key(*n))
        .map(|n| want.get_key_value(n).expect("head names are expected").0)
        .collect();
    if !missing_head.is_empty() {
        let names: Vec<&str> = missing_head.iter().map(|s| s.as_str()).collect();
        return Err(WeightsError::NoHead(format!("missing {}", names.join(", "))));
    }
    for name in want.keys() {
        if !out.tensors.contains_key(name) {
            return Err(WeightsError::Missing(name.clone()));
        }
    }
    Ok(out)
}

/// A small, portable, seedable generator: the same head on every platform.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_real_checkpoints_use() {
        use Architecture::*;
        assert_eq!(
            canonical_name("roberta.encoder.layer.0.output.dense.weight", Roberta).unwrap(),
            "encoder.layer.0.output.dense.weight"
        );
        assert_eq!(canonical_name("bert.embeddings.LayerNorm.gamma", Bert).unwrap(), "embeddings.LayerNorm.weight");
        assert_eq!(canonical_name("embeddings.LayerNorm.beta", Bert).unwrap(), "embeddings.LayerNorm.bias");
        assert_eq!(canonical_name("embeddings.position_ids", Bert), None);
        assert_eq!(canonical_name("roberta.pooler.dense.weight", Roberta), None);
        assert_eq!(canonical_name("pooler.dense.weight", Bert).unwrap(), "pooler.dense.weight");
        assert_eq!(canonical_name("classifier.out_proj.bias", Roberta).unwrap(), "classifier.out_proj.bias");
        assert_eq!(canonical_name("lm_head.dense.weight", Roberta), None);
    }
}
