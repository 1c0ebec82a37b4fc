//! The three building blocks whose storage differs between float and quantized models.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};

/// A dense layer: float (trainable) or quantized weights with an f32 bias.
pub enum Linear {
    Float(candle_nn::Linear),
    Quantized { weight: QMatMul, bias: Tensor },
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Float(l) => l.forward(x),
            Linear::Quantized { weight, bias } => weight.forward(x)?.broadcast_add(bias),
        }
    }
}

/// A lookup table. The quantized table stays quantized: only looked-up rows are dequantized.
pub enum Embedding {
    Float(Tensor),
    Quantized(QTensor),
}

impl Embedding {
    /// `ids` `[b, t]` → `[b, t, hidden]`.
    pub fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Embedding::Float(table) => {
                let (b, t) = ids.dims2()?;
                let hidden = table.dim(1)?;
                table.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, hidden))
            }
            Embedding::Quantized(q) => q.embedding(ids),
        }
    }
}

/// LayerNorm with the config's eps. The fused kernel has no gradient, so trainable weights take
/// the plain (differentiable) path.
pub struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
    differentiable: bool,
}

impl Norm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f64, differentiable: bool) -> Self {
        Norm { weight, bias, eps: eps as f32, differentiable }
    }

    pub fn differentiable(&self) -> bool {
        self.differentiable
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.differentiable {
            candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)
        }
    }
}
