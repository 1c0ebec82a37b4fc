//! Where one training step's time goes: forward + loss, backward, gradient clipping and the
//! AdamW update, timed separately over real length-bucketed batches of a training file.
//!
//!   cargo run --release -p sentiment-trainer --example train_step_profile -- MODEL_DIR TRAIN_TEXT [STEPS] [BATCH]
//!
//! MODEL_DIR is an HF checkpoint without a head (e.g. scripts/fetch-minilm.sh's), given a fresh
//! 3-way head; set RAYON_NUM_THREADS to pin the thread count. Prints milliseconds per phase.

use candle_core::{Device, Tensor};
use model::tokenize::PaddedBatch;
use sentiment_trainer::data::load_examples;
use sentiment_trainer::train::batches::epoch_batches;
use sentiment_trainer::train::optim::clip_coefficient;
use sentiment_trainer::train::run::load_base;
use sentiment_trainer::train::Trainable;
use shared::Preprocess;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model_dir = PathBuf::from(&args[1]);
    let train = PathBuf::from(&args[2]);
    let steps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let batch_size: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let max_len = 64;
    // As `sentiment-trainer train` runs.
    sentiment_trainer::apply_process_settings();

    let labels = vec!["negative".to_string(), "neutral".to_string(), "positive".to_string()];
    let base = load_base(&model_dir, Some(labels.clone()), Preprocess::None)?;
    let examples = load_examples(&train, &labels)?;
    let ids: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| {
            let mut ids = base.encoder.encode(&e.text)?;
            if ids.len() > max_len {
                let last = *ids.last().expect("non-empty");
                ids.truncate(max_len - 1);
                ids.push(last);
            }
            Ok(ids)
        })
        .collect::<anyhow::Result<_>>()?;
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let batches = epoch_batches(&lengths, batch_size, 7);
    let pad = base.config.pad_token_id;
    let mut model = Trainable::new(base.config.clone(), base.tensors, 0.01)?;

    // [forward+loss, backward, clip, update]
    let mut totals = [0f64; 4];
    let mut tokens = 0usize;
    let wall = Instant::now();
    // The first step pays for allocating the Adam moments' pages; it is reported but not averaged.
    for (i, batch) in batches.iter().take(steps + 1).enumerate() {
        let seqs: Vec<Vec<u32>> = batch.iter().map(|&j| ids[j].clone()).collect();
        let labels: Vec<u32> = batch.iter().map(|&j| examples[j].label as u32).collect();
        let padded = PaddedBatch::new(&seqs, pad);
        tokens += padded.ids.len();
        let t0 = Instant::now();
        let out = model.classifier.forward_train_seeded(&padded, i as u64)?;
        let targets = Tensor::from_slice(&labels, labels.len(), &Device::Cpu)?;
        let loss = candle_nn::loss::cross_entropy(&out.logits, &targets)?;
        let t1 = Instant::now();
        let store = loss.backward()?;
        let grads: Vec<Option<Tensor>> =
            model.optimizer.params.iter().map(|p| store.get(p.var.as_tensor()).cloned()).collect();
        drop(store);
        let t2 = Instant::now();
        let (_, coef) = clip_coefficient(&grads, 1.0)?;
        let t3 = Instant::now();
        model.optimizer.update_scaled(&grads, coef, 1e-5)?;
        let t4 = Instant::now();
        let ms = [t1 - t0, t2 - t1, t3 - t2, t4 - t3].map(|d| d.as_secs_f64() * 1e3);
        println!(
            "step {i}: {}x{} fwd {:.0} ms, bwd {:.0} ms, clip {:.0} ms, adamw {:.0} ms",
            padded.batch, padded.seq, ms[0], ms[1], ms[2], ms[3]
        );
        if i > 0 {
            for (t, m) in totals.iter_mut().zip(ms) {
                *t += m;
            }
        }
    }
    let n = steps.max(1) as f64;
    let step_ms: f64 = totals.iter().sum::<f64>() / n;
    println!(
        "mean over {steps} steps: fwd {:.0} ms, bwd {:.0} ms, clip {:.0} ms, adamw {:.0} ms = {step_ms:.0} ms/step, \
         {:.1} examples/s (wall incl. first step {:.1} s, {tokens} padded tokens)",
        totals[0] / n,
        totals[1] / n,
        totals[2] / n,
        totals[3] / n,
        batch_size as f64 / step_ms * 1e3,
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}
