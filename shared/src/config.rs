//! The architecture config of an encoder classifier, parsed from a Hub `config.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The encoder families this project runs. `xlm-roberta` and `camembert` share RoBERTa's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Bert,
    Roberta,
}

/// Everything the model code needs to know, normalised from `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    /// `model_type` as the checkpoint wrote it (`roberta`, `xlm-roberta`, `bert`, ...).
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub pad_token_id: u32,
    pub layer_norm_eps: f64,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    /// Dropout before the classifier; `None` means `hidden_dropout_prob` (as transformers does).
    pub classifier_dropout: Option<f64>,
    /// Labels in id order (`id2label[0]`, `id2label[1]`, ...).
    pub labels: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config.json is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("config.json has model_type {0:?}; supported: bert, roberta, xlm-roberta, camembert")]
    UnknownModelType(String),
    #[error("config.json has no model_type")]
    MissingModelType,
    #[error("config.json lacks {0}")]
    Missing(&'static str),
    #[error("config.json has hidden_act {0:?}; only \"gelu\" (exact erf GELU) is supported")]
    UnsupportedActivation(String),
    #[error("config.json has no id2label: the checkpoint has no classification labels (pass labels explicitly to add a fresh head)")]
    NoLabels,
    #[error("config.json id2label is inconsistent: {0}")]
    BadLabels(String),
    #[error("config.json is inconsistent: {0}")]
    Inconsistent(String),
}

/// The subset of a Hub `config.json` we read; everything else is ignored.
#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    pad_token_id: Option<u32>,
    layer_norm_eps: Option<f64>,
    hidden_act: Option<String>,
    hidden_dropout_prob: Option<f64>,
    attention_probs_dropout_prob: Option<f64>,
    classifier_dropout: Option<f64>,
    id2label: Option<BTreeMap<String, String>>,
    label2id: Option<BTreeMap<String, serde_json::Value>>,
}

impl ModelConfig {
    /// Parses a Hub `config.json`. With `labels`, the checkpoint's own `id2label` is ignored
    /// (a fresh classification head will be made for these labels).
    pub fn from_hf_json(bytes: &[u8], labels: Option<Vec<String>>) -> Result<Self, ConfigError> {
        let raw: HfConfig = serde_json::from_slice(bytes)?;
        let model_type = raw.model_type.ok_or(ConfigError::MissingModelType)?;
        let architecture = match model_type.as_str() {
            "bert" => Architecture::Bert,
            "roberta" | "xlm-roberta" | "camembert" => Architecture::Roberta,
            other => return Err(ConfigError::UnknownModelType(other.to_string())),
        };
        let hidden_act = raw.hidden_act.unwrap_or_else(|| "gelu".into());
        if hidden_act != "gelu" {
            return Err(ConfigError::UnsupportedActivation(hidden_act));
        }
        let labels = match labels {
            Some(l) => l,
            None => labels_from_id2label(raw.id2label, raw.label2id)?,
        };
        let cfg = ModelConfig {
            architecture,
            model_type,
            vocab_size: raw.vocab_size.ok_or(ConfigError::Missing("vocab_size"))?,
            hidden_size: raw.hidden_size.ok_or(ConfigError::Missing("hidden_size"))?,
            num_hidden_layers: raw.num_hidden_layers.ok_or(ConfigError::Missing("num_hidden_layers"))?,
            num_attention_heads: raw.num_attention_heads.ok_or(ConfigError::Missing("num_attention_heads"))?,
            intermediate_size: raw.intermediate_size.ok_or(ConfigError::Missing("intermediate_size"))?,
            max_position_embeddings: raw
                .max_position_embeddings
                .ok_or(ConfigError::Missing("max_position_embeddings"))?,
            type_vocab_size: raw.type_vocab_size.unwrap_or(2),
            pad_token_id: raw.pad_token_id.unwrap_or(match architecture {
                Architecture::Bert => 0,
                Architecture::Roberta => 1,
            }),
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
            hidden_dropout_prob: raw.hidden_dropout_prob.unwrap_or(0.1),
            attention_probs_dropout_prob: raw.attention_probs_dropout_prob.unwrap_or(0.1),
            classifier_dropout: raw.classifier_dropout,
            labels,
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks the invariants the model code relies on.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Inconsistent(m));
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.max_position_embeddings <= self.position_offset() + 1 {
            return bad(format!("max_position_embeddings {} leaves no room for tokens", self.max_position_embeddings));
        }
        if self.pad_token_id as usize >= self.vocab_size {
            return bad(format!("pad_token_id {} >= vocab_size {}", self.pad_token_id, self.vocab_size));
        }
        if self.labels.len() < 2 {
            return Err(ConfigError::BadLabels(format!(
                "{} label(s); a classifier needs at least 2",
                self.labels.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for l in &self.labels {
            if l.trim().is_empty() || !seen.insert(l) {
                return Err(ConfigError::BadLabels(format!("label {l:?} is empty or repeated")));
            }
        }
        Ok(())
    }

    /// Where position ids start: `pad_token_id + 1` for RoBERTa, 0 for BERT.
    pub fn position_offset(&self) -> usize {
        match self.architecture {
            Architecture::Bert => 0,
            Architecture::Roberta => self.pad_token_id as usize + 1,
        }
    }

    /// The longest input, special tokens included (512 for roberta-base: 514 minus 2).
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings - self.position_offset()
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The config in Hub `config.json` form, loadable by transformers.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let (arch, mt) = match self.architecture {
            Architecture::Bert => ("BertForSequenceClassification", self.model_type.as_str()),
            Architecture::Roberta => ("RobertaForSequenceClassification", self.model_type.as_str()),
        };
        let id2label: BTreeMap<String, String> =
            self.labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect();
        let label2id: BTreeMap<String, usize> = self.labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
        let mut v = serde_json::json!({
            "architectures": [arch],
            "model_type": mt,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "pad_token_id": self.pad_token_id,
            "layer_norm_eps": self.layer_norm_eps,
            "hidden_act": "gelu",
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "id2label": id2label,
            "label2id": label2id,
            "problem_type": "single_label_classification",
        });
        if let Some(d) = self.classifier_dropout {
            v["classifier_dropout"] = d.into();
        }
        if self.architecture == Architecture::Roberta {
            v["bos_token_id"] = 0.into();
            v["eos_token_id"] = 2.into();
        }
        v
    }
}

fn labels_from_id2label(
    id2label: Option<BTreeMap<String, String>>,
    label2id: Option<BTreeMap<String, serde_json::Value>>,
) -> Result<Vec<String>, ConfigError> {
    let id2label = id2label.ok_or(ConfigError::NoLabels)?;
    if id2label.is_empty() {
        return Err(ConfigError::NoLabels);
    }
    let mut labels = vec![None; id2label.len()];
    for (k, v) in &id2label {
        let i: usize = k.parse().map_err(|_| ConfigError::BadLabels(format!("key {k:?} is not a number")))?;
        let slot = labels
            .get_mut(i)
            .ok_or_else(|| ConfigError::BadLabels(format!("ids must be 0..{}, found {i}", id2label.len())))?;
        *slot = Some(v.clone());
    }
    let labels: Vec<String> = labels.into_iter().map(|l| l.expect("ids are dense")).collect();
    if let Some(label2id) = label2id {
        for (i, l) in labels.iter().enumerate() {
            let id = label2id.get(l).and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
            if id != Some(i as u64) {
                return Err(ConfigError::BadLabels(format!(
                    "id2label[{i}] = {l:?} but label2id[{l:?}] = {:?}",
                    label2id.get(l)
                )));
            }
        }
    }
    if labels.iter().all(|l| l.starts_with("LABEL_")) {
        return Err(ConfigError::BadLabels(
            "only placeholder names (LABEL_0, LABEL_1, ...); the checkpoint was not trained as a classifier".into(),
        ));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARDIFF: &str = r#"{"_name_or_path": "/home/jupyter/misc/tweeteval/TweetEval_models/sentiment/sentiment_latest_2021/",
      "architectures": ["RobertaForSequenceClassification"], "attention_probs_dropout_prob": 0.1,
      "bos_token_id": 0, "eos_token_id": 2, "gradient_checkpointing": false, "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1, "hidden_size": 768,
      "id2label": {"0": "negative", "1": "neutral", "2": "positive"}, "initializer_range": 0.02,
      "intermediate_size": 3072, "label2id": {"negative": 0, "neutral": 1, "positive": 2},
      "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta",
      "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
      "position_embedding_type": "absolute", "torch_dtype": "float32", "transformers_version": "4.13.0.dev0",
      "type_vocab_size": 1, "use_cache": true, "vocab_size": 50265}"#;

    #[test]
    fn parses_the_production_config() {
        let c = ModelConfig::from_hf_json(CARDIFF.as_bytes(), None).unwrap();
        assert_eq!(c.architecture, Architecture::Roberta);
        assert_eq!(c.labels, ["negative", "neutral", "positive"]);
        assert_eq!(c.max_tokens(), 512);
        assert_eq!(c.position_offset(), 2);
        assert_eq!(c.layer_norm_eps, 1e-5);
        // Round trip through our own HF form.
        let again = ModelConfig::from_hf_json(c.to_hf_json().to_string().as_bytes(), None).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn refuses_bad_configs_with_a_sentence() {
        let no_labels = CARDIFF.replace(r#""id2label": {"0": "negative", "1": "neutral", "2": "positive"},"#, "");
        let e = ModelConfig::from_hf_json(no_labels.as_bytes(), None).unwrap_err();
        assert!(matches!(e, ConfigError::NoLabels), "{e}");
        let gap = CARDIFF.replace(r#""2": "positive""#, r#""5": "positive""#);
        assert!(matches!(ModelConfig::from_hf_json(gap.as_bytes(), None), Err(ConfigError::BadLabels(_))));
        let swapped = CARDIFF.replace(r#""negative": 0, "neutral": 1"#, r#""negative": 1, "neutral": 0"#);
        assert!(matches!(ModelConfig::from_hf_json(swapped.as_bytes(), None), Err(ConfigError::BadLabels(_))));
        let gpt = CARDIFF.replace(r#""model_type": "roberta""#, r#""model_type": "gpt2""#);
        let e = ModelConfig::from_hf_json(gpt.as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("gpt2"));
        let heads = CARDIFF.replace(r#""num_attention_heads": 12"#, r#""num_attention_heads": 7"#);
        assert!(matches!(ModelConfig::from_hf_json(heads.as_bytes(), None), Err(ConfigError::Inconsistent(_))));
        assert!(matches!(ModelConfig::from_hf_json(b"{", None), Err(ConfigError::Json(_))));
        // Explicit labels replace a missing id2label.
        let c = ModelConfig::from_hf_json(no_labels.as_bytes(), Some(vec!["a".into(), "b".into()])).unwrap();
        assert_eq!(c.labels, ["a", "b"]);
    }
}
