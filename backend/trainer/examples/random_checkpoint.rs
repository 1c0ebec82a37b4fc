//! A full-size roberta-base-shaped sentiment checkpoint with random weights (HF's default
//! init: normal with std 0.02, layer norms 1 and 0, biases 0; seeded), with roberta-base's real
//! tokenizer: for speed measurements that need the production model's shape and vocabulary
//! (the browser benchmark's explain and latency figures), where its weights are not at hand.
//! The weights are random: never commit them.
//!
//! ```sh
//! cargo run --release -p sentiment-trainer --example random_checkpoint -- \
//!     ../shared/data/roberta-base-tokenizer target/roberta-base-random
//! ```

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use model::tokenize::{build_tokenizer, TextEncoder, TokenizerFiles};
use model::weights::{expected_shapes, SplitMix64};
use sentiment_trainer::train::state::write_hf_checkpoint;
use shared::config::ModelConfig;
use shared::Preprocess;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [vocab_dir, out] = &args[..] else {
        anyhow::bail!("usage: random_checkpoint VOCAB_DIR (vocab.json + merges.txt) OUT_DIR");
    };
    let (vocab_dir, out) = (PathBuf::from(vocab_dir), PathBuf::from(out));
    let config = serde_json::json!({
        "architectures": ["RobertaForSequenceClassification"],
        "model_type": "roberta", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "hidden_act": "gelu", "vocab_size": 50265, "max_position_embeddings": 514,
        "type_vocab_size": 1, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
        "label2id": {"negative": 0, "neutral": 1, "positive": 2},
    });
    let config = ModelConfig::from_hf_json(config.to_string().as_bytes(), None)?;
    let read = |f: &str| std::fs::read(vocab_dir.join(f)).with_context(|| format!("{}", vocab_dir.join(f).display()));
    let (vocab, merges) = (read("vocab.json")?, read("merges.txt")?);
    let files = TokenizerFiles { vocab_json: Some(&vocab), merges_txt: Some(&merges), ..Default::default() };
    let encoder = TextEncoder::new(build_tokenizer(files, &config)?, &config, Preprocess::Cardiffnlp)?;

    let mut rng = SplitMix64(20261207);
    let mut tensors = BTreeMap::new();
    for (name, shape) in expected_shapes(&config) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if name.contains("LayerNorm.weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            (0..n).map(|_| 0.02 * rng.normal()).collect()
        };
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    write_hf_checkpoint(&out, &config, &tensors, &encoder)?;
    for f in ["vocab.json", "merges.txt"] {
        std::fs::copy(vocab_dir.join(f), out.join(f))?;
    }
    println!("{}: roberta-base shape, random weights, roberta-base tokenizer", out.display());
    Ok(())
}
