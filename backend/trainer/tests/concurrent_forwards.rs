//! Forwards on several threads at once. A forward keeps the pool's other threads spinning in
//! a job of its own while it runs (`kernels::threads::spin_workers_in_forwards`, which the
//! trainer sets); those jobs run other forwards' work too, and every forward must still finish,
//! with the same bits as when run one at a time.

mod common;

use candle_core::Device;
use common::*;
use model::gguf::GgufWeights;
use model::tokenize::PaddedBatch;
use model::{quantize_to_gguf, Classifier, Quantization};
use sentiment_trainer::checkpoint::{Checkpoint, LoadOptions};
use shared::Preprocess;

#[test]
fn concurrent_forwards_finish_with_the_same_results() {
    kernels_as_the_trainer_runs_them();
    let dir = fixture("tiny-roberta-bpe");
    let ck = Checkpoint::load(&dir, &LoadOptions { preprocess: Preprocess::None, ..Default::default() }).unwrap();
    // q8_0: the packed kernel's products are parallel steps even at this size, so each forward
    // waits for (and steals) jobs while the others run.
    let gguf = quantize_to_gguf(&ck.config, &ck.weights.tensors, Quantization::Q8_0, None, |_, _| {}).unwrap();
    let mut w = GgufWeights::read(&mut std::io::Cursor::new(&gguf), &ck.config, &Device::Cpu).unwrap();
    let model = Classifier::new(ck.config.clone(), &mut w, &Device::Cpu).unwrap();
    let batches: Vec<PaddedBatch> = golden(&dir)
        .cases
        .iter()
        .map(|case| PaddedBatch::new(&[ck.encoder.encode(&case.text).unwrap()], ck.config.pad_token_id))
        .collect();
    let logits = |batch: &PaddedBatch| model.forward(batch).unwrap().logits.to_vec2::<f32>().unwrap();
    let one_at_a_time: Vec<_> = batches.iter().map(logits).collect();
    std::thread::scope(|s| {
        for thread in 0..4 {
            let (batches, one_at_a_time) = (&batches, &one_at_a_time);
            s.spawn(move || {
                for round in 0..50 {
                    for (i, batch) in batches.iter().enumerate() {
                        assert_eq!(logits(batch), one_at_a_time[i], "thread {thread}, round {round}, case {i}");
                    }
                }
            });
        }
    });
}
