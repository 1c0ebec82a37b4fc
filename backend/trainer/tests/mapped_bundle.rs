//! A bundle's weights used in place through the memory map (native `predict`) give exactly the
//! logits of the same `model.gguf` read into memory (what the browser does), for every block
//! type a bundle holds (tiny fixture: q8_0, q4k's q5_0 fallback, f16 and f32 fallbacks).

mod common;

use candle_core::Device;
use common::fixture;
use model::BundleModel;
use model::Quantization;
use sentiment_trainer::bundle_writer::{write_bundle, BundleInfo};
use sentiment_trainer::checkpoint::{Checkpoint, LoadOptions};
use sentiment_trainer::predict::Predictor;
use shared::bundle::{Source, MODEL_FILE};
use shared::Preprocess;

#[test]
fn mapped_weights_match_weights_read_into_memory() {
    common::kernels_as_the_trainer_runs_them();
    let src = fixture("tiny-roberta-bpe");
    let ck = Checkpoint::load(&src, &LoadOptions { preprocess: Preprocess::None, ..Default::default() }).unwrap();
    let texts = ["I love it", "worst service ever, never again", "ok.", "meh 😐 https://t.co/x"];
    for quant in [Quantization::Q8_0, Quantization::Q4K, Quantization::F16, Quantization::F32] {
        let out =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sm-mapped-{quant}-{}", std::process::id()));
        let info = BundleInfo {
            source: Source { repo_id: src.display().to_string(), revision: None },
            quantization: quant,
            version: Some("test".into()),
            parent_version: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            metrics: Default::default(),
            lineage: None,
            calibration: None,
        };
        let manifest = write_bundle(&ck, info, &out, |_, _, _| {}).unwrap();
        let mapped = Predictor::open_bundle(&out).unwrap();
        let in_memory = manifest.classifier(&std::fs::read(out.join(MODEL_FILE)).unwrap(), &Device::Cpu).unwrap();
        let ids = mapped.encoder.encode_all(&texts).unwrap();
        // One padded batch, then each text alone.
        let batches = std::iter::once(ids.clone()).chain(ids.iter().map(|s| vec![s.clone()]));
        for seqs in batches {
            let got = mapped.logits(&seqs).unwrap();
            let batch = mapped.encoder.pad(&seqs);
            let want = in_memory.forward(&batch).unwrap().logits.to_vec2::<f32>().unwrap();
            assert_eq!(got, want, "{quant}: mapped and in-memory logits differ");
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// q8_0 matrices are stored Hadamard-rotated: the file says which, and a reader that dequantizes
/// them (training from a bundle) gets the trained values back, not the rotated ones; quantized
/// logits stay close to the float model's.
#[test]
fn rotated_weights_read_back_as_trained() {
    use model::gguf::{rotations, GgufWeights};
    use model::WeightSource;
    let src = fixture("tiny-roberta-bpe");
    let ck = Checkpoint::load(&src, &LoadOptions { preprocess: Preprocess::None, ..Default::default() }).unwrap();
    let gguf = model::quantize_to_gguf(&ck.config, &ck.weights.tensors, Quantization::Q8_0, None, |_, _| {}).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(&gguf)).unwrap();
    let rotated = rotations(&content).unwrap();
    assert!(rotated.contains_key("encoder.layer.0.attention.self.query.weight"), "not rotated: {rotated:?}");
    assert!(!rotated.contains_key("embeddings.word_embeddings.weight"));
    let mut w = GgufWeights::read(&mut std::io::Cursor::new(&gguf), &ck.config, &Device::Cpu).unwrap();
    for name in rotated.keys() {
        let want = &ck.weights.tensors[name];
        let got = w.tensor(name).unwrap();
        let err = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        // q8_0 moves each rotated value by at most half a step (block max / 127); the inverse
        // rotation mixes those errors. Unrotated values would be off by the size of the values.
        assert!(err <= scale / 50.0, "{name}: read back {err} away from the trained values (max {scale})");
    }
}
