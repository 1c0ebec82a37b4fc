//! Calibration for quantization: what each Linear layer's inputs look like on sample texts.
//!
//! Round-to-nearest quantization treats every weight as equally important. A layer's output
//! error is `(W − Ŵ)·x`, though, and the inputs `x` are far from uniform: some features are
//! large and correlated, others near zero. The second moments `H = Σ x·xᵀ` of the inputs,
//! collected here by running the float model over sample texts, are what GPTQ (`super::gptq`)
//! needs to choose levels that keep the layer's outputs, not its weights, close to the float
//! model's.

use super::layers::Linear;
use super::{Classifier, Embedding, FloatWeights, ModelError, WeightSource};
use crate::tokenize::PaddedBatch;
use candle_core::{DType, Device, Tensor};
use shared::config::ModelConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// `Σ x·xᵀ` over the `count` input vectors one Linear layer saw, `k × k` row-major. f32: a
/// roberta-base holds 72 of these (up to 3072²), and GPTQ damps them by 1 % anyway.
#[derive(Debug, Clone)]
pub struct InputMoments {
    pub k: usize,
    pub sum: Vec<f32>,
    pub count: usize,
}

/// The input moments of every Linear layer, by weight name (`encoder.layer.0.output.dense.weight`).
#[derive(Debug, Default)]
pub struct Calibration {
    pub moments: HashMap<String, InputMoments>,
    /// Texts run through the model.
    pub texts: usize,
}

/// Where observed layers add their inputs while calibration runs.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<RecorderState>>);

#[derive(Default)]
struct RecorderState {
    moments: HashMap<String, InputMoments>,
    /// The batch being run: `[b, t]`, and the flat indices of its real (not padding) tokens.
    batch: (usize, usize),
    real_tokens: Option<Tensor>,
    /// `xᵀ·x` of the last input seen, by tensor id: query, key and value share their input.
    last: Option<(candle_core::TensorId, Vec<f32>)>,
}

impl Recorder {
    /// Adds every real token's row of `x` (`[b, t, k]`, or `[b, k]` for the first tokens only)
    /// to the moments of `name`.
    pub fn add(&self, name: &str, x: &Tensor) -> candle_core::Result<()> {
        let mut st = self.0.lock().expect("calibration lock");
        let RecorderState { moments, batch, real_tokens, last } = &mut *st;
        let k = x.dim(candle_core::D::Minus1)?;
        let rows = x.elem_count() / k.max(1);
        // Padding is only present when the input has a row per token of the batch.
        let real = real_tokens.as_ref().filter(|_| rows == batch.0 * batch.1);
        if last.as_ref().is_none_or(|(id, _)| *id != x.id()) {
            let flat = x.reshape((rows, k))?.to_dtype(DType::F32)?;
            let flat = match real {
                Some(idx) => flat.index_select(idx, 0)?,
                None => flat,
            };
            *last = Some((x.id(), flat.t()?.matmul(&flat)?.flatten_all()?.to_vec1::<f32>()?));
        }
        let xtx = &last.as_ref().expect("just set").1;
        let count = real.map_or(rows, Tensor::elem_count);
        let m = moments.entry(name.to_string()).or_insert_with(|| InputMoments { k, sum: vec![0.0; k * k], count: 0 });
        if m.k != k {
            candle_core::bail!("{name}: inputs of {k} features after inputs of {}", m.k);
        }
        for (s, v) in m.sum.iter_mut().zip(xtx) {
            *s += *v;
        }
        m.count += count;
        Ok(())
    }

    fn start_batch(&self, batch: &PaddedBatch) -> candle_core::Result<()> {
        let mut st = self.0.lock().expect("calibration lock");
        st.batch = (batch.batch, batch.seq);
        let real: Vec<u32> = (0..batch.mask.len() as u32).filter(|&i| batch.mask[i as usize] != 0).collect();
        let n = real.len();
        st.real_tokens = if n == batch.mask.len() { None } else { Some(Tensor::from_vec(real, n, &Device::Cpu)?) };
        st.last = None;
        Ok(())
    }
}

/// Float weights whose Linear layers record their inputs.
struct ObservedWeights {
    inner: FloatWeights,
    record: Recorder,
}

impl WeightSource for ObservedWeights {
    fn tensor(&mut self, name: &str) -> Result<Tensor, ModelError> {
        self.inner.tensor(name)
    }
    fn linear(&mut self, prefix: &str) -> Result<Linear, ModelError> {
        match self.inner.linear(prefix)? {
            Linear::Float(linear) => {
                Ok(Linear::Observed { linear, name: format!("{prefix}.weight"), record: self.record.clone() })
            }
            other => Ok(other),
        }
    }
    fn embedding(&mut self, name: &str) -> Result<Embedding, ModelError> {
        self.inner.embedding(name)
    }
    fn differentiable(&self) -> bool {
        false
    }
}

/// Padded tokens per forward pass while calibrating: batches of similar lengths, so padding
/// (which the moments skip) costs little.
const TOKENS_PER_BATCH: usize = 1024;

/// Runs the float model (canonical-name tensors) over `texts` (token ids with special tokens)
/// and collects every Linear layer's input moments; padding never enters them.
/// `progress(done, total)` after each batch.
pub fn calibrate(
    config: &ModelConfig,
    tensors: &HashMap<String, Tensor>,
    texts: &[Vec<u32>],
    mut progress: impl FnMut(usize, usize),
) -> Result<Calibration, ModelError> {
    let record = Recorder::default();
    let mut weights = ObservedWeights { inner: FloatWeights::new(tensors.clone()), record: record.clone() };
    let model = Classifier::new(config.clone(), &mut weights, &Device::Cpu)?;
    let mut by_length: Vec<&Vec<u32>> = texts.iter().collect();
    by_length.sort_by_key(|ids| ids.len());
    let mut done = 0;
    while done < by_length.len() {
        // Sorted ascending, so the batch's last text is its longest.
        let mut end = done + 1;
        while end < by_length.len() && (end + 1 - done) * by_length[end].len() <= TOKENS_PER_BATCH {
            end += 1;
        }
        let seqs: Vec<Vec<u32>> = by_length[done..end].iter().map(|ids| ids.to_vec()).collect();
        let batch = PaddedBatch::new(&seqs, config.pad_token_id);
        record.start_batch(&batch)?;
        model.forward(&batch)?;
        done = end;
        progress(done, texts.len());
    }
    drop(model);
    let moments = std::mem::take(&mut record.0.lock().expect("calibration lock").moments);
    Ok(Calibration { moments, texts: texts.len() })
}
