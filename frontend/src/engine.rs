//! The model as the worker runs it: the bundle's text encoder and quantized classifier on the
//! CPU device. Plain Rust over bytes, so it also builds (and could run) natively.

use crate::protocol::Prediction;
use candle_core::Device;
use model::explain::{Explanation, Occlusion};
use model::tokenize::{TextEncoder, TokenizeError};
use model::{argmax, softmax, BundleModel, Classifier, LoadError, ModelError};
use shared::Manifest;
use std::cell::RefCell;
use std::io::{Read, Seek};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not tokenize the text: {0}")]
    Tokenize(#[from] TokenizeError),
    #[error("the model failed: {0}")]
    Model(#[from] ModelError),
}

pub struct Engine {
    manifest: Manifest,
    encoder: TextEncoder,
    classifier: Classifier,
    /// The last text analysed and its probabilities: explaining it next (what the page's Explain
    /// button does) reuses them instead of running the text again (`Occlusion::reuse_text_probs`).
    last_analyzed: RefCell<Option<(String, Vec<f32>)>>,
}

/// Texts per forward pass in a batch: small enough to answer a cancel quickly and keep the
/// padded activations small. wasm memory never shrinks, so the largest chunk's activations
/// stay with the worker for good: with roberta-base at q8_0, chunks of 16 tweets took the
/// worker from 1.2× to 1.7× the bundle's size. The wasm kernels gain little from more rows.
pub const BATCH_CHUNK: usize = 4;

impl Engine {
    /// Builds the model from the bundle's text encoder (`BundleModel::text_encoder`) and its
    /// `model.gguf`, which must have been checked against the manifest. The weights are read
    /// tensor by tensor, so the file need not be in wasm memory (see `worker::js_bytes`).
    pub fn new(manifest: Manifest, encoder: TextEncoder, mut model_gguf: impl Read + Seek) -> Result<Self, LoadError> {
        let classifier = manifest.classifier_from_reader(&mut model_gguf, &Device::Cpu)?;
        Ok(Engine { manifest, encoder, classifier, last_analyzed: RefCell::new(None) })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// One text, unpadded (the manifest's preprocessing is applied by the encoder).
    pub fn analyze(&self, text: &str) -> Result<Prediction, EngineError> {
        let ids = self.encoder.encode(text)?;
        let prediction = self.predict_ids(&[ids])?.remove(0);
        // The scores are the forward pass's f32 probabilities widened to f64: narrowing them
        // back is exact.
        let probs = prediction.scores.iter().map(|&p| p as f32).collect();
        *self.last_analyzed.borrow_mut() = Some((text.to_string(), probs));
        Ok(prediction)
    }

    pub fn encode_all(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, EngineError> {
        Ok(self.encoder.encode_all(texts)?)
    }

    /// The forward rows of part `part` of `parts` of `text`'s explanation (`model::explain`),
    /// to run with [`Engine::explain_step`].
    pub fn occlusion(&self, text: &str, part: usize, parts: usize) -> Result<Occlusion, EngineError> {
        let mut run = Occlusion::part(&self.encoder, text, part, parts)?;
        if let Some((_, probs)) = self.last_analyzed.borrow().as_ref().filter(|(t, _)| t == text) {
            run.reuse_text_probs(probs.clone());
        }
        Ok(run)
    }

    /// Runs the next batch of an explanation's rows.
    pub fn explain_step(&self, run: &mut Occlusion) -> Result<(), EngineError> {
        Ok(run.step(&self.encoder, &self.classifier)?)
    }

    pub fn explanation(&self, run: Occlusion) -> Explanation {
        run.finish(&self.manifest.labels)
    }

    /// One padded forward pass over already-tokenized texts.
    pub fn predict_ids(&self, seqs: &[Vec<u32>]) -> Result<Vec<Prediction>, EngineError> {
        let batch = self.encoder.pad(seqs);
        let logits = self.classifier.forward(&batch)?.logits.to_vec2::<f32>().map_err(ModelError::from)?;
        let labels = &self.manifest.labels;
        Ok(logits
            .iter()
            .map(|row| {
                let probs = softmax(row);
                Prediction { label: labels[argmax(&probs)].clone(), scores: probs.iter().map(|&p| p as f64).collect() }
            })
            .collect())
    }
}

/// Batch order as the native predictor uses it: by token count, so each chunk pads little.
pub fn length_order(ids: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    order
}
