//! Acceptance 1: one training step (mean cross-entropy, global-norm clipping to 1.0, AdamW
//! lr 1e-3 with the no-decay group) on fixtures/train-step's batch against PyTorch.
//! Reference: fixtures/train-step/make_train_step.py (torch 2.15, one CPU thread).
//!
//! Two checks, because AdamW's first step divides each gradient by its own magnitude
//! (`update = lr * g / (|g| + eps)`): a gradient that is f32 noise (the attention key biases,
//! whose true gradient is exactly 0, come out at ~1e-9 in both frameworks) moves its weight by
//! up to `lr` in a direction set by the noise. So
//! 1. the optimizer alone (clip + AdamW) is fed PyTorch's own gradients and must reproduce
//!    every updated parameter to 1e-6;
//! 2. the whole step (our forward, backward, clip, AdamW) must give the loss, the gradient norm
//!    and every gradient to float accuracy, and every updated parameter within 1e-5 wherever
//!    the gradient is above the noise floor (|g| ≥ 1e-6); the few below it are counted.

mod common;

use candle_core::{Device, Tensor};
use model::tokenize::PaddedBatch;
use model::weights::canonical_name;
use sentiment_trainer::checkpoint::{Checkpoint, LoadOptions};
use sentiment_trainer::train::optim::clip_coefficient;
use sentiment_trainer::train::Trainable;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Step {
    lr: f64,
    weight_decay: f64,
    max_grad_norm: f64,
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
    labels: Vec<u32>,
    loss_before: f64,
    grad_norm_before_clip: f64,
    loss_after: f64,
    logits_after: Vec<Vec<f32>>,
}

fn load_step() -> Step {
    serde_json::from_slice(&std::fs::read(common::fixture("train-step/step.json")).unwrap()).unwrap()
}

/// The tiny RoBERTa with dropout off by config, as in the reference.
fn model(weight_decay: f64) -> Trainable {
    let ck = Checkpoint::load(&common::fixture("tiny-roberta-bpe"), &LoadOptions::default()).unwrap();
    let mut config = ck.config.clone();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    config.classifier_dropout = Some(0.0);
    Trainable::new(config, ck.weights.tensors, weight_decay).unwrap()
}

fn torch(file: &str) -> HashMap<String, Tensor> {
    let raw = candle_core::safetensors::load(common::fixture(file), &Device::Cpu).unwrap();
    let arch = shared::Architecture::Roberta;
    raw.into_iter().map(|(k, v)| (canonical_name(&k, arch).unwrap(), v)).collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn max_abs(xs: impl Iterator<Item = f32>) -> f32 {
    xs.fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn adamw_on_pytorch_gradients_reproduces_pytorch_update() {
    common::kernels_as_the_trainer_runs_them();
    let step = load_step();
    let mut m = model(step.weight_decay);
    let grads = torch("train-step/grads.safetensors");
    let grads: Vec<Option<Tensor>> = m.optimizer.params.iter().map(|p| Some(grads[&p.name].clone())).collect();
    let (norm, coef) = clip_coefficient(&grads, step.max_grad_norm).unwrap();
    assert!((norm - step.grad_norm_before_clip).abs() < 1e-6, "norm {norm}");
    let clipped: Vec<Option<Tensor>> = grads.iter().map(|g| g.as_ref().map(|g| g.affine(coef, 0.0).unwrap())).collect();
    m.optimizer.update(&clipped, step.lr).unwrap();
    let want = torch("train-step/updated.safetensors");
    let ours = m.tensors();
    assert_eq!(want.len(), ours.len());
    let mut worst = 0f32;
    for (name, w) in &want {
        let d = max_abs(values(&ours[name]).iter().zip(values(w)).map(|(a, b)| a - b));
        assert!(d <= 1e-6, "{name}: max diff {d}");
        worst = worst.max(d);
    }
    eprintln!("optimizer only: worst |ours - torch| over all 41 tensors = {worst:.2e}");
}

#[test]
fn one_training_step_matches_pytorch() {
    common::kernels_as_the_trainer_runs_them();
    let step = load_step();
    let mut m = model(step.weight_decay);
    let batch = PaddedBatch {
        ids: step.input_ids.concat(),
        mask: step.attention_mask.concat(),
        batch: step.input_ids.len(),
        seq: step.input_ids[0].len(),
    };

    // Loss and raw gradients.
    let (loss, grads) = m.loss_and_grads(&batch, &step.labels, Some(1234)).unwrap();
    assert!((loss as f64 - step.loss_before).abs() < 1e-5, "loss {loss} vs {}", step.loss_before);
    let torch_grads = torch("train-step/grads.safetensors");
    assert_eq!(torch_grads.len(), grads.len());
    for (p, g) in m.optimizer.params.iter().zip(&grads) {
        let (got, want) = (values(g.as_ref().expect("every parameter gets a gradient")), values(&torch_grads[&p.name]));
        let scale = max_abs(want.iter().copied());
        let d = max_abs(got.iter().zip(&want).map(|(a, b)| a - b));
        // Relative to the tensor's largest gradient; the key biases (true gradient 0) are noise.
        assert!(d <= 1e-4 * scale.max(1e-4), "grad {}: max diff {d} (max |g| {scale})", p.name);
    }

    // The full step.
    let stats = m.step(&batch, &step.labels, Some(1234), step.lr, step.max_grad_norm).unwrap();
    assert!((stats.loss as f64 - step.loss_before).abs() < 1e-5);
    assert!((stats.grad_norm - step.grad_norm_before_clip).abs() < 1e-5, "grad norm {}", stats.grad_norm);

    let updated = torch("train-step/updated.safetensors");
    let ours = m.tensors();
    assert_eq!(updated.len(), ours.len(), "every parameter is compared");
    let (mut worst, mut noise, mut total) = (0f32, 0usize, 0usize);
    for (name, want) in &updated {
        let g = values(&torch_grads[name]);
        for ((a, b), g) in values(&ours[name]).iter().zip(values(want)).zip(g) {
            total += 1;
            let d = (a - b).abs();
            if d <= 1e-5 {
                worst = worst.max(d);
                continue;
            }
            // Only a noise-level gradient may miss, and still by at most one learning rate.
            assert!(g.abs() < 1e-6, "updated {name}: {a} vs {b} (torch grad {g:e})");
            assert!(d <= 2.0 * step.lr as f32, "{name}: {a} vs {b}");
            noise += 1;
        }
    }
    eprintln!(
        "full step: {} of {total} updated parameters within 1e-5 of torch (worst {worst:.2e}); {noise} beyond, all with |g| < 1e-6",
        total - noise
    );

    // The forward after the step agrees too.
    let logits = m.logits(&batch).unwrap();
    let want = Tensor::new(step.logits_after.clone(), &Device::Cpu).unwrap();
    assert!(max_abs(values(&logits).iter().zip(values(&want)).map(|(a, b)| a - b)) < 1e-5);
    let targets = Tensor::new(step.labels.as_slice(), &Device::Cpu).unwrap();
    let loss_after = candle_nn::loss::cross_entropy(&logits, &targets).unwrap().to_scalar::<f32>().unwrap();
    assert!((loss_after as f64 - step.loss_after).abs() < 1e-5, "loss after {loss_after} vs {}", step.loss_after);
}
