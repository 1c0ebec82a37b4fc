//! Parity with transformers: token ids, position ids, logits and hidden states of the tiny
//! random fixtures (both `.safetensors` and `.bin`), one by one and as a padded batch, through
//! the float model and through an f32 bundle.

mod common;

use candle_core::Device;
use common::*;
use model::tokenize::{PaddedBatch, TextEncoder};
use model::{Classifier, FloatWeights};
use sentiment_trainer::checkpoint::{load_encoder, load_weights, Checkpoint, LoadOptions};
use shared::config::ModelConfig;
use shared::Preprocess;
use std::path::Path;

const TOL: f32 = 1e-4;

fn check_model(dir: &Path, weights_file: &str, encoder: &TextEncoder, config: &ModelConfig) {
    let g = golden(dir);
    let w = load_weights(&dir.join(weights_file), config, None).unwrap();
    assert!(w.ignored.iter().all(|n| n.contains("pooler") || n.contains("position_ids")), "{:?}", w.ignored);
    let model = Classifier::new(config.clone(), &mut FloatWeights::new(w.tensors), &Device::Cpu).unwrap();
    let mut worst = 0f32;
    for case in &g.cases {
        let ids = encoder.encode(&case.text).unwrap();
        assert_eq!(ids, case.input_ids, "{}: token ids differ", case.id);
        let batch = PaddedBatch::new(&[ids], config.pad_token_id);
        assert_eq!(model.position_ids(&batch), case.position_ids, "{}: position ids", case.id);
        let out = model.forward(&batch).unwrap();
        let logits = out.logits.to_vec2::<f32>().unwrap().remove(0);
        let d = max_abs_diff(&logits, &case.logits);
        worst = worst.max(d);
        assert!(d < TOL, "{} ({weights_file}): logits {logits:?} vs {:?}", case.id, case.logits);
        let hidden = out.first_token_hidden.to_vec2::<f32>().unwrap().remove(0);
        let golden_last = case.token0_hidden_states.last().unwrap();
        assert!(max_abs_diff(&hidden, golden_last) < TOL, "{}: last hidden state", case.id);
    }
    // The padded batch: equal to transformers' batch, and to our own one-by-one results.
    let unpadded: Vec<Vec<u32>> = g
        .batch
        .input_ids
        .iter()
        .zip(&g.batch.attention_mask)
        .map(|(ids, mask)| ids[..mask.iter().filter(|&&m| m == 1).count()].to_vec())
        .collect();
    let batch = PaddedBatch::new(&unpadded, config.pad_token_id);
    assert_eq!(batch.ids, g.batch.input_ids.concat(), "our padding equals transformers' padding");
    let flat_mask: Vec<u32> = g.batch.attention_mask.concat();
    assert_eq!(batch.mask, flat_mask, "our padding equals transformers' padding");
    let logits = model.forward(&batch).unwrap().logits.to_vec2::<f32>().unwrap();
    for (i, row) in logits.iter().enumerate() {
        let case = g.cases.iter().find(|c| c.id == g.batch.case_ids[i]).unwrap();
        assert!(max_abs_diff(row, &g.batch.logits[i]) < TOL, "batch row {i} vs transformers");
        assert!(max_abs_diff(row, &case.logits) < TOL, "batch row {i} vs unbatched golden");
    }
    eprintln!("{} {weights_file}: {} cases, worst |logit diff| {worst:.2e}", dir.display(), g.cases.len());
}

fn self_contained(name: &str) {
    let dir = fixture(name);
    let ck = Checkpoint::load(&dir, &LoadOptions { preprocess: Preprocess::None, ..Default::default() }).unwrap();
    for file in ["model.safetensors", "pytorch_model.bin"] {
        check_model(&dir, file, &ck.encoder, &ck.config);
    }
}

#[test]
fn tiny_roberta_bpe_matches_transformers() {
    common::kernels_as_the_trainer_runs_them();
    self_contained("tiny-roberta-bpe");
}

#[test]
fn tiny_bert_matches_transformers() {
    common::kernels_as_the_trainer_runs_them();
    self_contained("tiny-bert-sentiment");
}

#[test]
#[cfg_attr(no_team_share, ignore = "needs the team share ../shared beside the repository (absent here)")]
fn tiny_roberta_with_the_real_vocabulary_matches_transformers() {
    common::kernels_as_the_trainer_runs_them();
    let tok_dir = team_share("data/roberta-base-tokenizer");
    let dir = fixture("tiny-roberta-sentiment");
    let config = ModelConfig::from_hf_json(&std::fs::read(dir.join("config.json")).unwrap(), None).unwrap();
    let encoder = load_encoder(&tok_dir, &config, Preprocess::None).unwrap();
    check_model(&dir, "model.safetensors", &encoder, &config);
}

#[test]
fn preprocessing_matches_the_model_card() {
    common::kernels_as_the_trainer_runs_them();
    for name in ["tiny-roberta-bpe", "tiny-bert-sentiment", "tiny-roberta-sentiment"] {
        let g = golden(&fixture(name));
        for pre in g.cases.iter().filter(|c| c.preprocess == "cardiffnlp") {
            let raw = g.cases.iter().find(|c| c.sample == pre.sample && c.preprocess == "none").unwrap();
            assert_eq!(Preprocess::Cardiffnlp.apply(&raw.text), pre.text, "{}", pre.id);
        }
    }
}
