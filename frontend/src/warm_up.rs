//! A tiny model for getting V8 to optimize the inference code before the real model runs.
//!
//! V8 first runs wasm as baseline code. It compiles a function optimized, in the background,
//! once the function has run hot, and only later calls use that code (a call in progress keeps
//! the baseline code). So the first forward pass of a fresh worker ran at baseline speed: with
//! roberta-base at q8_0, ~0.9 s against ~0.18 s once optimized, and a user who pressed Analyse
//! as soon as the model was ready waited for it.
//!
//! So the worker builds a tiny model with the real model's architecture and quantization and
//! runs it on [`batches`] while the real weights are still being read (from the cache or the
//! network), when it would otherwise sit idle. That runs the functions the real model will:
//! GGUF reading, repacking, every kernel, each of the matrix kernel's row-tile variants.
//!
//! A browser profile that keeps V8's code cache (a normal one; not a private window) also
//! stores the optimized code with the worker's wasm, so later visits start with it: there the
//! tiny model takes ~40 ms and the real model's first pass ~25-60 ms. Without that cache the
//! tiny model takes ~0.2-0.7 s of baseline code, mostly hidden behind the weights' read, and
//! the real model's first pass 0.1-0.3 s (roberta-base q8_0, AMD machine).

use candle_core::{Device, Tensor};
use model::gguf::{dtype_for_row, GgufWeights};
use model::tokenize::PaddedBatch;
use model::weights::expected_shapes;
use model::{quantize_to_gguf, Classifier, ModelError, Quantization};
use shared::config::ModelConfig;
use std::collections::HashMap;

/// Tokens of the tiny model's vocabulary (the batches use ids below it).
const VOCAB: usize = 64;

/// The real config shrunk to one layer of as few heads as keep the real model's kinds of
/// quantized rows (q4k needs rows of a multiple of 256 values, else it falls back to q5_0),
/// with deterministic weights, quantized and read back through GGUF as a bundle's model is.
pub fn tiny_model(config: &ModelConfig, quant: Quantization) -> Result<Classifier, ModelError> {
    let head = config.head_dim();
    let same_kinds = |heads: usize| {
        dtype_for_row(quant, heads * head) == dtype_for_row(quant, config.hidden_size)
            && dtype_for_row(quant, 4 * heads * head) == dtype_for_row(quant, config.intermediate_size)
    };
    let heads = (2..config.num_attention_heads).find(|&h| same_kinds(h)).unwrap_or(config.num_attention_heads);
    let mut tiny = config.clone();
    tiny.hidden_size = head * heads;
    tiny.num_attention_heads = heads;
    tiny.intermediate_size = 4 * tiny.hidden_size;
    tiny.num_hidden_layers = 1;
    tiny.vocab_size = VOCAB;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut tensors = HashMap::new();
    for (name, shape) in expected_shapes(&tiny) {
        let n = shape.iter().product::<usize>();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 40) as f32 / (1u64 << 24) as f32 * 0.2 - 0.1
            })
            .collect();
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    let gguf = quantize_to_gguf(&tiny, &tensors, quant, None, |_, _| {})?;
    drop(tensors);
    let mut weights = GgufWeights::read(&mut std::io::Cursor::new(gguf), &tiny, &Device::Cpu)?;
    Classifier::new(tiny, &mut weights, &Device::Cpu)
}

/// Batches whose row counts leave every remainder of the matrix kernel's row tile (6), of one
/// text and of several padded ones (as a batch analysis runs them).
pub fn batches(pad_token_id: u32) -> Vec<PaddedBatch> {
    let shapes = [(1, 7), (1, 8), (1, 9), (1, 10), (1, 11), (1, 12), (4, 9), (4, 24)];
    shapes
        .iter()
        .map(|&(texts, tokens)| {
            let seqs: Vec<Vec<u32>> = (0..texts)
                .map(|t| (0..tokens - t % 3).map(|i| (3 + (i * 7 + t) % (VOCAB - 3)) as u32).collect())
                .collect();
            PaddedBatch::new(&seqs, pad_token_id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The production checkpoint's shape (roberta-base) and all-MiniLM-L6-v2's (BERT, 384
    /// wide, heads of 32).
    fn config(model_type: &str, hidden: usize, heads: usize, intermediate: usize) -> ModelConfig {
        let json = serde_json::json!({
            "model_type": model_type, "hidden_size": hidden, "num_attention_heads": heads,
            "intermediate_size": intermediate, "num_hidden_layers": 12, "vocab_size": 50265,
            "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1,
            "layer_norm_eps": 1e-5, "hidden_act": "gelu",
            "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
        });
        ModelConfig::from_hf_json(json.to_string().as_bytes(), None).unwrap()
    }

    #[test]
    fn tiny_models_keep_the_real_quantization_kinds_and_run_every_batch() {
        let roberta = config("roberta", 768, 12, 3072);
        let minilm = config("bert", 384, 12, 1536);
        // (config, quantization, expected tiny hidden size)
        let cases = [
            (&roberta, Quantization::Q8_0, 128),
            (&roberta, Quantization::Q4K, 256),
            (&minilm, Quantization::Q8_0, 64),
            (&minilm, Quantization::Q4K, 64),
        ];
        for (real, quant, hidden) in cases {
            let model = tiny_model(real, quant).unwrap();
            let tiny = model.config();
            assert_eq!((tiny.hidden_size, tiny.head_dim(), tiny.num_hidden_layers), (hidden, real.head_dim(), 1));
            assert_eq!(dtype_for_row(quant, tiny.hidden_size), dtype_for_row(quant, real.hidden_size));
            assert_eq!(dtype_for_row(quant, tiny.intermediate_size), dtype_for_row(quant, real.intermediate_size));
            for batch in batches(real.pad_token_id) {
                let logits = model.forward(&batch).unwrap().logits;
                assert_eq!(logits.dims(), [batch.batch, 3]);
                assert!(logits.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite()));
            }
        }
    }
}
