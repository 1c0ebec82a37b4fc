//! The encoder classifier (BERT / RoBERTa) in candle, with float weights (training, reference)
//! or quantized weights (inference). One forward pass serves both. Also: the tokenizer
//! ([`tokenize`]), a model from a bundle's files ([`bundle`]), quantization ([`gguf`],
//! [`quantize`], [`gptq`], [`calibration`]) and the training ops ([`train_ops`]). The products
//! and element-wise ops run on the `kernels` crate, which chooses the target's form: nothing
//! here depends on the target.

pub mod bundle;
pub mod calibration;
pub mod explain;
pub mod gguf;
pub mod gptq;
pub mod layers;
pub mod quantize;
pub mod tokenize;
pub mod train_ops;
pub mod weights;

use crate::tokenize::PaddedBatch;
use candle_core::{Device, Module, Tensor};
use layers::{Embedding, Linear, Norm};
use shared::config::{Architecture, ModelConfig};
use std::collections::HashMap;

pub use bundle::{BundleModel, LoadError};
pub use gguf::{quantize_to_gguf, GgufError, Quantization};
pub use weights::{normalize, WeightsError};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("inference failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("token id {id} is outside the vocabulary ({vocab} entries)")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("sequence of {len} tokens exceeds the model's limit of {max}")]
    TooLong { len: usize, max: usize },
}

/// Where a model's tensors come from, so one forward serves float and quantized weights.
pub trait WeightSource {
    fn tensor(&mut self, name: &str) -> Result<Tensor, ModelError>;
    fn linear(&mut self, prefix: &str) -> Result<Linear, ModelError>;
    fn embedding(&mut self, name: &str) -> Result<Embedding, ModelError>;
    /// True when the tensors are trainable and the forward must keep gradients.
    fn differentiable(&self) -> bool;
}

/// Canonical-name float tensors (plain, or `Var`s for training).
pub struct FloatWeights {
    tensors: HashMap<String, Tensor>,
    differentiable: bool,
}

impl FloatWeights {
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        FloatWeights { tensors, differentiable: false }
    }

    /// From a training `VarMap`: the forward keeps gradients.
    pub fn from_varmap(vm: &candle_nn::VarMap) -> Self {
        let tensors =
            vm.data().lock().expect("varmap lock").iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        FloatWeights { tensors, differentiable: true }
    }
}

impl WeightSource for FloatWeights {
    fn tensor(&mut self, name: &str) -> Result<Tensor, ModelError> {
        self.tensors.get(name).cloned().ok_or_else(|| WeightsError::Missing(name.to_string()).into())
    }
    fn linear(&mut self, prefix: &str) -> Result<Linear, ModelError> {
        Ok(Linear::Float(candle_nn::Linear::new(
            self.tensor(&format!("{prefix}.weight"))?,
            Some(self.tensor(&format!("{prefix}.bias"))?),
        )))
    }
    fn embedding(&mut self, name: &str) -> Result<Embedding, ModelError> {
        Ok(Embedding::Float(self.tensor(name)?))
    }
    fn differentiable(&self) -> bool {
        self.differentiable
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    intermediate: Linear,
    output: Linear,
    out_norm: Norm,
}

enum Head {
    /// RoBERTa: dense → tanh → out_proj on `<s>`.
    Roberta { dense: Linear, out_proj: Linear },
    /// BERT: pooler (dense → tanh on `[CLS]`) → classifier.
    Bert { pooler: Linear, classifier: Linear },
}

/// The encoder with its classification head.
pub struct Classifier {
    config: ModelConfig,
    word: Embedding,
    position: Tensor,
    token_type: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    head: Head,
    /// Dropout probabilities, applied only by `forward_train`.
    hidden_dropout: f32,
    attention_dropout: f32,
    classifier_dropout: f32,
    device: Device,
}

/// What one forward pass gives: logits `[batch, labels]` and the final hidden state of the
/// first token (`<s>` / `[CLS]`) `[batch, hidden]`.
pub struct Output {
    pub logits: Tensor,
    pub first_token_hidden: Tensor,
}

impl Classifier {
    pub fn new(config: ModelConfig, w: &mut dyn WeightSource, device: &Device) -> Result<Self, ModelError> {
        let eps = config.layer_norm_eps;
        let diff = w.differentiable();
        let norm = |w: &mut dyn WeightSource, p: &str| -> Result<Norm, ModelError> {
            Ok(Norm::new(w.tensor(&format!("{p}.weight"))?, w.tensor(&format!("{p}.bias"))?, eps, diff))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                query: w.linear(&format!("{p}.attention.self.query"))?,
                key: w.linear(&format!("{p}.attention.self.key"))?,
                value: w.linear(&format!("{p}.attention.self.value"))?,
                attn_out: w.linear(&format!("{p}.attention.output.dense"))?,
                attn_norm: norm(w, &format!("{p}.attention.output.LayerNorm"))?,
                intermediate: w.linear(&format!("{p}.intermediate.dense"))?,
                output: w.linear(&format!("{p}.output.dense"))?,
                out_norm: norm(w, &format!("{p}.output.LayerNorm"))?,
            });
        }
        let head = match config.architecture {
            Architecture::Roberta => {
                Head::Roberta { dense: w.linear("classifier.dense")?, out_proj: w.linear("classifier.out_proj")? }
            }
            Architecture::Bert => Head::Bert { pooler: w.linear("pooler.dense")?, classifier: w.linear("classifier")? },
        };
        let hidden_dropout = config.hidden_dropout_prob as f32;
        Ok(Classifier {
            word: w.embedding("embeddings.word_embeddings.weight")?,
            position: w.tensor("embeddings.position_embeddings.weight")?,
            token_type: w.tensor("embeddings.token_type_embeddings.weight")?,
            emb_norm: norm(w, "embeddings.LayerNorm")?,
            layers,
            head,
            hidden_dropout,
            attention_dropout: config.attention_probs_dropout_prob as f32,
            classifier_dropout: config.classifier_dropout.map(|d| d as f32).unwrap_or(hidden_dropout),
            config,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Position ids as transformers makes them: RoBERTa counts from `pad_token_id + 1` over
    /// non-pad tokens (pads get `pad_token_id`), BERT from 0.
    pub fn position_ids(&self, batch: &PaddedBatch) -> Vec<u32> {
        let mut out = Vec::with_capacity(batch.ids.len());
        match self.config.architecture {
            Architecture::Bert => {
                for _ in 0..batch.batch {
                    out.extend(0..batch.seq as u32);
                }
            }
            Architecture::Roberta => {
                let pad = self.config.pad_token_id;
                for row in batch.ids.chunks(batch.seq.max(1)) {
                    let mut count = 0;
                    for &id in row {
                        if id != pad {
                            count += 1;
                            out.push(pad + count);
                        } else {
                            out.push(pad);
                        }
                    }
                }
            }
        }
        out
    }

    /// Inference: dropout off.
    pub fn forward(&self, batch: &PaddedBatch) -> Result<Output, ModelError> {
        self.run(batch, Dropout::Off)
    }

    /// Training: dropout as configured, masks from the device RNG (not reproducible).
    pub fn forward_train(&self, batch: &PaddedBatch) -> Result<Output, ModelError> {
        self.run(batch, Dropout::Device)
    }

    /// Training with dropout masks drawn from `seed`: the same seed gives the same masks (and,
    /// with the same weights, the same gradients) on every run, which makes training
    /// reproducible and resumable.
    pub fn forward_train_seeded(&self, batch: &PaddedBatch, seed: u64) -> Result<Output, ModelError> {
        self.run(batch, Dropout::Seeded(std::cell::RefCell::new(weights::SplitMix64(seed))))
    }

    fn run(&self, batch: &PaddedBatch, dropout: Dropout) -> Result<Output, ModelError> {
        // Natively on a thread of candle's pool; the other threads spin through it if the
        // program asked for that (`kernels::threads::spin_workers_in_forwards`).
        kernels::threads::run_forward(&self.device, || self.run_on_this_thread(batch, dropout))
    }

    fn run_on_this_thread(&self, batch: &PaddedBatch, dropout: Dropout) -> Result<Output, ModelError> {
        let (b, t) = (batch.batch, batch.seq);
        let max = self.config.max_tokens();
        if t > max {
            return Err(ModelError::TooLong { len: t, max });
        }
        if let Some(&id) = batch.ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(ModelError::TokenOutOfRange { id, vocab: self.config.vocab_size });
        }
        let dev = &self.device;
        let drop = |x: Tensor, p: f32| dropout.apply(x, p);
        let ids = Tensor::from_slice(&batch.ids, (b, t), dev)?;
        let pos = Tensor::from_vec(self.position_ids(batch), (b * t,), dev)?;
        let words = self.word.lookup(&ids)?; // [b, t, h]
        let h = self.config.hidden_size;
        let positions = self.position.index_select(&pos, 0)?.reshape((b, t, h))?;
        // Every token has type 0: these models take single texts.
        let types = self.token_type.get(0)?;
        let x = words.add(&positions)?.broadcast_add(&types)?;
        let mut x = drop(self.emb_norm.forward(&x)?, self.hidden_dropout)?;

        // Additive mask [b, 1, 1, t]: 0 where attended, a very negative number on padding.
        let mask: Vec<f32> = batch.mask.iter().map(|&m| if m == 1 { 0.0 } else { f32::MIN }).collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, t), dev)?;
        let heads = self.config.num_attention_heads;
        let hd = self.config.head_dim();
        let scale = 1.0 / (hd as f64).sqrt();
        let diff = self.emb_norm.differentiable();
        // Inference needs only the first token out of the last layer (the head reads nothing
        // else): there the other tokens serve only as keys and values, and their queries,
        // attention outputs and FFN — ~7 % of a forward — are skipped. Every op but attention
        // is per token, so the first token's numbers are the same. Not with dropout: the
        // masks drawn, and so seeded training, would change.
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let x_q =
                if i == last && matches!(dropout, Dropout::Off) { x.narrow(1, 0, 1)?.contiguous()? } else { x.clone() };
            let t_q = x_q.dim(1)?;
            let (q, k, v) = if t_q == t {
                let [q, k, v] = Linear::forward_same_input([&layer.query, &layer.key, &layer.value], &x)?;
                (q, k, v)
            } else {
                let [k, v] = Linear::forward_same_input([&layer.key, &layer.value], &x)?;
                (layer.query.forward(&x_q)?, k, v)
            };
            let ctx = if diff || !matches!(dropout, Dropout::Off) {
                let split = |y: &Tensor| kernels::attention::split_heads(y, heads);
                let scores = (split(&q)?.matmul(&split(&k)?.t()?)? * scale)?.broadcast_add(&mask)?;
                let probs =
                    if diff { train_ops::softmax_last_dim(&scores)? } else { kernels::ops::softmax_last_dim(&scores)? };
                drop(probs, self.attention_dropout)?.matmul(&split(&v)?)?.transpose(1, 2)?.reshape((b, t_q, h))?
            } else {
                kernels::attention::attention(&q, &k, &v, &mask, heads, scale)?
            };
            let attn = drop(layer.attn_out.forward(&ctx)?, self.hidden_dropout)?;
            let x1 = layer.attn_norm.forward_sum(&attn, &x_q)?;
            // One expression, so the pre-GELU activations are freed before the output projection
            // (which may make a rotated copy of its input) runs.
            let inter = {
                let pre = layer.intermediate.forward(&x1)?;
                if diff {
                    train_ops::gelu_erf(&pre)?
                } else {
                    kernels::ops::gelu_erf(&pre)?
                }
            };
            let out = drop(layer.output.forward(&inter)?, self.hidden_dropout)?;
            x = layer.out_norm.forward_sum(&out, &x1)?;
        }
        let first = x.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?; // [b, h]
        let logits = match &self.head {
            Head::Roberta { dense, out_proj } => {
                let y = drop(first.clone(), self.classifier_dropout)?;
                let y = dense.forward(&y)?.tanh()?;
                let y = drop(y, self.classifier_dropout)?;
                out_proj.forward(&y)?
            }
            Head::Bert { pooler, classifier } => {
                let pooled = pooler.forward(&first)?.tanh()?;
                classifier.forward(&drop(pooled, self.classifier_dropout)?)?
            }
        };
        Ok(Output { logits, first_token_hidden: first })
    }
}

/// Where dropout masks come from.
enum Dropout {
    Off,
    Device,
    Seeded(std::cell::RefCell<weights::SplitMix64>),
}

impl Dropout {
    fn apply(&self, x: Tensor, p: f32) -> candle_core::Result<Tensor> {
        if p <= 0.0 {
            return Ok(x);
        }
        match self {
            Dropout::Off => Ok(x),
            Dropout::Device => candle_nn::ops::dropout(&x, p),
            Dropout::Seeded(rng) => {
                // Keep with probability 1 - p, scale kept values by 1 / (1 - p), as PyTorch does.
                let mut rng = rng.borrow_mut();
                let threshold = (p as f64 * 4_294_967_296.0) as u64;
                let scale = 1.0 / (1.0 - p);
                let n = x.elem_count();
                let mut mask = Vec::with_capacity(n);
                while mask.len() < n {
                    let r = rng.next_u64();
                    for half in [r & 0xFFFF_FFFF, r >> 32] {
                        if mask.len() < n {
                            mask.push(if half < threshold { 0.0f32 } else { scale });
                        }
                    }
                }
                let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
                x.mul(&mask)
            }
        }
    }
}

/// Probabilities from one row of logits (numerically stable softmax).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Index of the largest value; the first one on ties.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}
