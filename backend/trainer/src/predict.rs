//! Running a model over texts natively: from a bundle directory (quantized, as the browser
//! runs it) or from a checkpoint directory (float).

use crate::checkpoint::{read_file, Checkpoint, CheckpointError, LoadOptions};
use crate::mapped_weights::MappedWeights;
use candle_core::Device;
use model::tokenize::{TextEncoder, TokenizeError};
use model::{argmax, softmax, BundleModel, Classifier, FloatWeights, LoadError, ModelError};
use serde::Serialize;
use shared::bundle::{Manifest, MANIFEST_FILE, MODEL_FILE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: {source}", path.display())]
    Bundle { path: PathBuf, source: Box<LoadError> },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
}

/// Most padded tokens in one forward call. Activation memory grows with batch × length
/// (roberta-base: ~50 kB per token across the FFN and attention buffers alive at once), so
/// batches are split to keep `predict` near the size of the weights: 128 tokens are ~4 tweets.
/// Throughput does not suffer: the products' kernels already work in slices of 31-48 rows,
/// and 1000 tweets took the same time (within the machine's ±10 % noise) as with 512.
pub const MAX_BATCH_TOKENS: usize = 128;

/// Splits `order` (sorted by length, ascending) into runs of at most `batch_size` items whose
/// padded size (count × longest) stays within `max_tokens`; a single longer item stands alone.
fn token_bounded_chunks(
    order: &[usize],
    len: impl Fn(usize) -> usize,
    batch_size: usize,
    max_tokens: usize,
) -> Vec<&[usize]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && end - start < batch_size && (end - start + 1) * len(order[end]) <= max_tokens {
            end += 1;
        }
        chunks.push(&order[start..end]);
        start = end;
    }
    chunks
}

/// A model ready to classify texts.
pub struct Predictor {
    pub encoder: TextEncoder,
    pub classifier: Classifier,
    /// The bundle's manifest, when loaded from a bundle.
    pub manifest: Option<Manifest>,
}

/// One text's result, as `predict --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub text: String,
    pub label: String,
    pub scores: BTreeMap<String, f32>,
    pub logits: Vec<f32>,
}

impl Predictor {
    /// Opens a bundle directory (has `manifest.json`) or a checkpoint directory.
    pub fn open(dir: &Path, preprocess: shared::Preprocess) -> Result<Self, PredictError> {
        if dir.join(MANIFEST_FILE).exists() {
            Self::open_bundle(dir)
        } else {
            let ck = Checkpoint::load(dir, &LoadOptions { preprocess, ..Default::default() })?;
            Self::from_float(ck.config, ck.weights.tensors, ck.encoder)
        }
    }

    /// A q8_0 model (as a q8_0 bundle would hold it) quantized from canonical-name float tensors
    /// in memory, e.g. an interpolation being compared with others: 3.5× faster than the float
    /// model on 2 cores, and what ships.
    pub fn quantized_q8_0(
        config: &shared::config::ModelConfig,
        tensors: &std::collections::HashMap<String, candle_core::Tensor>,
        encoder: TextEncoder,
    ) -> Result<Self, PredictError> {
        let gguf = model::quantize_to_gguf(config, tensors, model::Quantization::Q8_0, None, |_, _| {})
            .map_err(ModelError::from)?;
        let mut w = model::gguf::GgufWeights::read(&mut std::io::Cursor::new(gguf), config, &Device::Cpu)
            .map_err(ModelError::from)?;
        let classifier = Classifier::new(config.clone(), &mut w, &Device::Cpu)?;
        Ok(Predictor { encoder, classifier, manifest: None })
    }

    /// A float model from canonical-name tensors already in memory.
    pub fn from_float(
        config: shared::config::ModelConfig,
        tensors: std::collections::HashMap<String, candle_core::Tensor>,
        encoder: TextEncoder,
    ) -> Result<Self, PredictError> {
        let classifier = Classifier::new(config, &mut FloatWeights::new(tensors), &Device::Cpu)?;
        Ok(Predictor { encoder, classifier, manifest: None })
    }

    pub fn open_bundle(dir: &Path) -> Result<Self, PredictError> {
        fn bundle_err<E: Into<LoadError>>(path: PathBuf) -> impl FnOnce(E) -> PredictError {
            move |source| PredictError::Bundle { path, source: Box::new(source.into()) }
        }
        let mpath = dir.join(MANIFEST_FILE);
        let manifest = Manifest::from_json(&read_file(&mpath)?).map_err(bundle_err(mpath.clone()))?;
        let tpath = dir.join(&manifest.tokenizer);
        let encoder = manifest.text_encoder(&read_file(&tpath)?).map_err(bundle_err(tpath))?;
        // Hashed as a stream, then mapped rather than read (see `mapped_weights`): the
        // weights are held once, as the CPU kernels lay them out.
        let gpath = dir.join(MODEL_FILE);
        let file = std::fs::File::open(&gpath).map_err(|source| CheckpointError::Io { path: gpath.clone(), source })?;
        manifest.verify_reader(MODEL_FILE, &mut std::io::BufReader::new(&file)).map_err(bundle_err(gpath.clone()))?;
        let model_err =
            |source: ModelError| PredictError::Bundle { path: gpath.clone(), source: Box::new(source.into()) };
        let mut weights = MappedWeights::open(&file, &manifest.config).map_err(model_err)?;
        let classifier = Classifier::new(manifest.config.clone(), &mut weights, &Device::Cpu).map_err(model_err)?;
        Ok(Predictor { encoder, classifier, manifest: Some(manifest) })
    }

    pub fn labels(&self) -> &[String] {
        &self.classifier.config().labels
    }

    /// Classifies texts in one padded batch.
    pub fn predict_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Prediction>, PredictError> {
        self.predict_many(texts, texts.len(), |_| {})
    }

    /// Logits for already-tokenized sequences (one padded batch).
    pub fn logits(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, PredictError> {
        let batch = self.encoder.pad(ids);
        let out = self.classifier.forward(&batch)?;
        Ok(out.logits.to_vec2::<f32>().map_err(ModelError::from)?)
    }

    /// Scores the model on labelled examples (label indices into `labels()`).
    pub fn evaluate(
        &self,
        examples: &[crate::data::Example],
        batch_size: usize,
        progress: impl FnMut(usize),
    ) -> Result<crate::eval::EvalReport, PredictError> {
        let predicted = self.predicted_labels(examples, batch_size, progress)?;
        let gold: Vec<usize> = examples.iter().map(|e| e.label).collect();
        Ok(crate::eval::EvalReport::new(self.labels(), &gold, &predicted))
    }

    /// The predicted label index of each example.
    pub fn predicted_labels(
        &self,
        examples: &[crate::data::Example],
        batch_size: usize,
        progress: impl FnMut(usize),
    ) -> Result<Vec<usize>, PredictError> {
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let labels = self.labels();
        Ok(self
            .predict_many(&texts, batch_size, progress)?
            .iter()
            .map(|p| labels.iter().position(|l| *l == p.label).expect("label from the model"))
            .collect())
    }

    /// Classifies many texts: sorted by length and batched so padding stays small; results
    /// come back in input order. `progress` gets the number of texts done.
    pub fn predict_many<S: AsRef<str>>(
        &self,
        texts: &[S],
        batch_size: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Prediction>, PredictError> {
        let ids = self.encoder.encode_all(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut logits: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        let mut done = 0;
        for chunk in token_bounded_chunks(&order, |i| ids[i].len(), batch_size.max(1), MAX_BATCH_TOKENS) {
            let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            for (&i, l) in chunk.iter().zip(self.logits(&seqs)?) {
                logits[i] = Some(l);
            }
            done += chunk.len();
            progress(done);
        }
        let labels = self.labels();
        Ok(texts
            .iter()
            .zip(logits)
            .map(|(text, logits)| {
                let logits = logits.expect("every text is in one chunk");
                let probs = softmax(&logits);
                let best = argmax(&probs);
                Prediction {
                    text: text.as_ref().to_string(),
                    label: labels[best].clone(),
                    scores: labels.iter().cloned().zip(probs).collect(),
                    logits,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::token_bounded_chunks;

    #[test]
    fn chunks_respect_both_the_batch_size_and_the_token_budget() {
        let lens = [10, 10, 10, 10, 10, 300, 600, 2000];
        let order: Vec<usize> = (0..lens.len()).collect();
        let chunks = token_bounded_chunks(&order, |i| lens[i], 4, 1024);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        // 4 short ones (batch size), then the 5th with the 300-token text (2 × 300 ≤ 1024),
        // the 600 alone (3 × 600 > 1024 is not tried: 2 × 600 > 1024), the 2000 alone.
        assert_eq!(sizes, vec![4, 2, 1, 1]);
        assert_eq!(chunks.concat(), order);
    }
}
