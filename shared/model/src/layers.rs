//! The three building blocks whose storage differs between float and quantized models.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use kernels::PackedMatrix;

/// A dense layer: float (trainable) or quantized weights with an f32 bias.
pub enum Linear {
    Float(candle_nn::Linear),
    /// A float layer whose inputs are added to a calibration record before the product
    /// (`super::calibration`), under its weight's name.
    Observed {
        linear: candle_nn::Linear,
        name: String,
        record: super::calibration::Recorder,
    },
    /// Quantized blocks (or, for f32/f16 files, a float tensor) and an f32 bias. Always the
    /// quantized kernels, whatever the batch: a text's scores must not depend on what it was
    /// batched with, nor differ between native and wasm. (Dequantizing for an f32 GEMM on large
    /// batches was measured and was slower natively; docs/benchmarks.md.)
    /// `rotation`: the Hadamard block the stored weight was rotated with
    /// (`kernels::rotation`); each input is rotated the same way before the product.
    Quantized {
        matmul: QMatMul,
        bias: Tensor,
        rotation: Option<usize>,
    },
    /// Weights repacked at load for our own kernels (`kernels::PackedMatrix`: Q8_0 and Q4K,
    /// simd128 in the browser, AVX2 or better natively; ~3-3.5× candle's speed in the browser).
    /// Same numbers as candle's up to float summation order, and every form's products are the
    /// same; the `QTensor` is dropped, so the weights are held once.
    Packed {
        weight: PackedMatrix,
        bias: Tensor,
        rotation: Option<usize>,
    },
}

impl Linear {
    pub fn quantized(weight: QTensor, bias: Tensor, rotation: Option<usize>) -> Result<Self> {
        if let Some(weight) = PackedMatrix::from_qtensor(&weight)? {
            return Ok(Linear::Packed { weight, bias, rotation });
        }
        Ok(Linear::Quantized { matmul: QMatMul::from_qtensor(weight)?, bias, rotation })
    }

    /// `linears[i].forward(x)` for each `i`. Where the kernels can share one prepared input
    /// among all of them (`PackedMatrix::forward_same_input`), `x` is rotated and quantized once.
    pub fn forward_same_input<const N: usize>(linears: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
        let packed: Option<Vec<_>> = linears
            .iter()
            .map(|l| match l {
                Linear::Packed { weight, bias, rotation } => Some((weight, bias, *rotation)),
                _ => None,
            })
            .collect();
        if let Some(packed) = packed {
            let rotation = packed.first().and_then(|p| p.2);
            if packed.iter().all(|p| p.2 == rotation) {
                let products: Vec<_> = packed.iter().map(|&(w, b, _)| (w, b)).collect();
                if let Some(outs) = PackedMatrix::forward_same_input(&products, x, rotation)? {
                    return Ok(outs.try_into().expect("one output per matrix"));
                }
            }
        }
        let outs = linears.iter().map(|l| l.forward(x)).collect::<Result<Vec<_>>>()?;
        Ok(outs.try_into().expect("one output per Linear"))
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Float(l) => matmul_2d(x, l.weight(), l.bias()),
            Linear::Observed { linear, name, record } => {
                record.add(name, x)?;
                matmul_2d(x, linear.weight(), linear.bias())
            }
            Linear::Quantized { matmul, bias, rotation } => {
                let x = rotate_input(x, *rotation)?;
                match matmul {
                    QMatMul::Tensor(w) => matmul_2d(&x, w, Some(bias)),
                    _ => kernels::candle_product(matmul, &x)?.broadcast_add(bias),
                }
            }
            Linear::Packed { weight, bias, rotation } => weight.forward(x, bias, *rotation),
        }
    }
}

/// The input as the stored weight expects it: rotated when the weight was (`kernels::rotation`).
fn rotate_input(x: &Tensor, rotation: Option<usize>) -> Result<Tensor> {
    match rotation {
        Some(block) => kernels::rotation::rotate_rows(x, block),
        None => Ok(x.clone()),
    }
}

/// `x · wᵀ + b` with `x` flattened to one matrix of rows: one GEMM against the weight as it is
/// stored, instead of broadcasting the weight over the batch (which copies it per call).
fn matmul_2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let k = x.dim(candle_core::D::Minus1)?;
    let rows = x.elem_count() / k.max(1);
    let y = x.reshape((rows, k))?.matmul(&w.t()?)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank >= 1") = w.dim(0)?;
    y.reshape(dims)
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

/// LayerNorm with the config's eps. candle's fused kernel has no gradient, so trainable weights
/// take the training op, which has one.
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

    /// The norm of `a + b`: a residual connection and the norm after it, in one pass where the
    /// kernels have it (`kernels::ops::add_layer_norm`).
    pub fn forward_sum(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if !self.differentiable {
            if let Some(y) = kernels::ops::add_layer_norm(a, b, &self.weight, &self.bias, self.eps) {
                return y;
            }
        }
        self.forward(&(a + b)?)
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.differentiable {
            super::train_ops::layer_norm(x, &self.weight, &self.bias, self.eps)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)
        }
    }
}
