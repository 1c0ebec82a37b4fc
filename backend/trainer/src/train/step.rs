//! One training step: forward with (seeded) dropout, mean cross-entropy, backward, gradient
//! clipping, AdamW.

use super::optim::{clip_coefficient, AdamW, AdamWConfig};
use super::TrainError;
use candle_core::{bail, CpuStorage, DType, Device, InplaceOp1, Layout, Tensor, Var};
use candle_nn::VarMap;
use model::tokenize::PaddedBatch;
use model::{Classifier, FloatWeights};
use shared::config::{Architecture, ModelConfig};
use std::collections::{BTreeMap, HashMap};

/// A classifier whose weights are trainable `Var`s, with its optimizer.
pub struct Trainable {
    pub classifier: Classifier,
    pub optimizer: AdamW,
    /// Embedding tables with a padding index, as (parameter index, padding row): PyTorch's
    /// `nn.Embedding(padding_idx=...)` gives that row a zero gradient.
    padding_rows: Vec<(usize, usize)>,
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy of the batch before the update.
    pub loss: f32,
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    pub lr: f64,
}

impl Trainable {
    /// `tensors` are canonical-name f32 tensors; `weight_decay` applies to the decay group.
    pub fn new(config: ModelConfig, tensors: HashMap<String, Tensor>, weight_decay: f64) -> Result<Self, TrainError> {
        let varmap = VarMap::new();
        let mut named: Vec<(String, Var)> = Vec::with_capacity(tensors.len());
        {
            let mut data = varmap.data().lock().expect("varmap lock");
            let mut sorted: Vec<(String, Tensor)> = tensors.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, t) in sorted {
                let var = Var::from_tensor(&t.to_dtype(DType::F32)?)?;
                data.insert(name.clone(), var.clone());
                named.push((name, var));
            }
        }
        let pad = config.pad_token_id as usize;
        let mut padded_tables = vec!["embeddings.word_embeddings.weight"];
        if config.architecture == Architecture::Roberta {
            padded_tables.push("embeddings.position_embeddings.weight");
        }
        let mut padding_rows = Vec::new();
        for (i, (name, var)) in named.iter().enumerate() {
            if padded_tables.contains(&name.as_str()) && pad < var.as_tensor().dim(0)? {
                padding_rows.push((i, pad));
            }
        }
        let classifier = Classifier::new(config, &mut FloatWeights::from_varmap(&varmap), &Device::Cpu)?;
        let optimizer = AdamW::new(AdamWConfig::default(), named, weight_decay)?;
        Ok(Trainable { classifier, optimizer, padding_rows })
    }

    pub fn config(&self) -> &ModelConfig {
        self.classifier.config()
    }

    /// Loss and raw (unclipped) gradients in `optimizer.params` order. `dropout_seed`: `None`
    /// runs without dropout.
    pub fn loss_and_grads(
        &self,
        batch: &PaddedBatch,
        labels: &[u32],
        dropout_seed: Option<u64>,
    ) -> Result<(f32, Vec<Option<Tensor>>), TrainError> {
        let out = match dropout_seed {
            Some(seed) => self.classifier.forward_train_seeded(batch, seed)?,
            None => self.classifier.forward(batch)?,
        };
        let targets = Tensor::from_slice(labels, labels.len(), &Device::Cpu)?;
        let loss = candle_nn::loss::cross_entropy(&out.logits, &targets)?;
        let store = loss.backward()?;
        let grads: Vec<Option<Tensor>> =
            self.optimizer.params.iter().map(|p| store.get(p.var.as_tensor()).cloned()).collect();
        for &(i, row) in &self.padding_rows {
            if let Some(g) = &grads[i] {
                // The gradient is a fresh tensor owned by the store, so zeroing it in place is
                // safe and avoids a table-sized masked copy.
                g.inplace_op1(&ZeroRow(row))?;
            }
        }
        Ok((loss.to_scalar::<f32>()?, grads))
    }

    /// Forward, backward, clip to `max_grad_norm` (0 = no clipping), one AdamW update at `lr`.
    pub fn step(
        &mut self,
        batch: &PaddedBatch,
        labels: &[u32],
        dropout_seed: Option<u64>,
        lr: f64,
        max_grad_norm: f64,
    ) -> Result<StepStats, TrainError> {
        let (loss, grads) = self.loss_and_grads(batch, labels, dropout_seed)?;
        let (grad_norm, coef) = clip_coefficient(&grads, max_grad_norm)?;
        self.optimizer.update_scaled(&grads, coef, lr)?;
        Ok(StepStats { loss, grad_norm, lr })
    }

    /// Logits without dropout.
    pub fn logits(&self, batch: &PaddedBatch) -> Result<Tensor, TrainError> {
        Ok(self.classifier.forward(batch)?.logits.detach())
    }

    /// The current weights under canonical names.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.optimizer.params.iter().map(|p| (p.name.clone(), p.var.as_tensor().detach())).collect()
    }
}

/// Sets one row of a contiguous 2-D f32 tensor to zero, in place.
struct ZeroRow(usize);

impl InplaceOp1 for ZeroRow {
    fn name(&self) -> &'static str {
        "zero-row"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else { bail!("zero-row: f32 only") };
        let (Some((start, _)), [rows, width]) = (layout.contiguous_offsets(), layout.dims()) else {
            bail!("zero-row: needs a contiguous matrix")
        };
        if self.0 < *rows {
            let at = start + self.0 * width;
            data[at..at + width].fill(0.0);
        }
        Ok(())
    }
}
