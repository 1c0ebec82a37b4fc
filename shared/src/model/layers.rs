//! The three building blocks whose storage differs between float and quantized models.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
use std::mem::MaybeUninit;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::wasm_matmul::PackedQ8;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::wasm_q4k::PackedQ4K;
#[cfg(target_arch = "x86_64")]
use super::x86_matmul::PackedQ8;
#[cfg(target_arch = "x86_64")]
use super::x86_q4k::PackedQ4K;

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
    /// (`super::rotation`); each input is rotated the same way before the product.
    Quantized {
        matmul: QMatMul,
        bias: Tensor,
        rotation: Option<usize>,
    },
    /// Q8_0 weights repacked at load for our own kernel: simd128 in the browser
    /// (`wasm_matmul`, ~3.5× faster than candle's there), AVX2 natively (`x86_matmul`). Same
    /// numbers as candle's up to float summation order, and the two kernels' products are
    /// the same; the `QTensor` is dropped, so the weights are held once.
    #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
    PackedQ8 {
        weight: PackedQ8,
        bias: Tensor,
        rotation: Option<usize>,
    },
    /// Q4K weights repacked at load for our own kernel: simd128 in the browser (`wasm_q4k`,
    /// ~3× faster than candle's there), AVX2 natively (`x86_q4k`). The `QTensor` is dropped.
    #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
    PackedQ4K {
        weight: PackedQ4K,
        bias: Tensor,
        rotation: Option<usize>,
    },
}

impl Linear {
    pub fn quantized(weight: QTensor, bias: Tensor, rotation: Option<usize>) -> Result<Self> {
        #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
        if let Some(weight) = PackedQ8::from_qtensor(&weight)? {
            return Ok(Linear::PackedQ8 { weight, bias, rotation });
        }
        #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
        if let Some(weight) = PackedQ4K::from_qtensor(&weight)? {
            return Ok(Linear::PackedQ4K { weight, bias, rotation });
        }
        Ok(Linear::Quantized { matmul: QMatMul::from_qtensor(weight)?, bias, rotation })
    }

    /// `linears[i].forward(x)` for each `i`. Where all are packed matrices of one kind (x86)
    /// that read the same prepared input (`x86_matmul::PackedQ8::forward_many`,
    /// `x86_q4k::PackedQ4K::forward_many`), `x` is rotated and quantized once for all of them.
    pub fn forward_same_input<const N: usize>(linears: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
        #[cfg(target_arch = "x86_64")]
        {
            fn q8(l: &Linear) -> Option<PackedParts<'_, PackedQ8>> {
                match l {
                    Linear::PackedQ8 { weight, bias, rotation } => Some((weight, bias, *rotation)),
                    _ => None,
                }
            }
            if let Some((products, rotation)) = sharing(&linears, q8, PackedQ8::shares_input) {
                let outs = PackedQ8::forward_many(&products, x, rotation)?;
                return Ok(outs.try_into().expect("one output per matrix"));
            }
            fn q4k(l: &Linear) -> Option<PackedParts<'_, PackedQ4K>> {
                match l {
                    Linear::PackedQ4K { weight, bias, rotation } => Some((weight, bias, *rotation)),
                    _ => None,
                }
            }
            if let Some((products, rotation)) = sharing(&linears, q4k, PackedQ4K::shares_input) {
                let outs = PackedQ4K::forward_many(&products, &rotate_input(x, rotation)?)?;
                return Ok(outs.try_into().expect("one output per matrix"));
            }
        }
        let outs = linears.iter().map(|l| l.forward(x)).collect::<Result<Vec<_>>>()?;
        Ok(outs.try_into().expect("one output per Linear"))
    }
}

/// A packed weight, its bias and its rotation, as `Linear` holds them.
#[cfg(target_arch = "x86_64")]
type PackedParts<'a, W> = (&'a W, &'a Tensor, Option<usize>);

/// Products of one input: (weight, bias) pairs.
#[cfg(target_arch = "x86_64")]
type Products<'a, W> = Vec<(&'a W, &'a Tensor)>;

/// The (weight, bias) pairs of `linears` and their common rotation, if `packed` finds a packed
/// weight of one kind in each, all with the same rotation and able to share an input.
#[cfg(target_arch = "x86_64")]
fn sharing<'a, W>(
    linears: &[&'a Linear],
    packed: impl Fn(&'a Linear) -> Option<PackedParts<'a, W>>,
    shares_input: impl Fn(&W, &W) -> bool,
) -> Option<(Products<'a, W>, Option<usize>)> {
    let all: Vec<_> = linears.iter().map(|l| packed(l)).collect::<Option<_>>()?;
    let &(first, _, rotation) = all.first()?;
    if all.iter().any(|&(w, _, r)| r != rotation || !shares_input(first, w)) {
        return None;
    }
    Some((all.into_iter().map(|(w, bias, _)| (w, bias)).collect(), rotation))
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
                    _ => quantized_matmul(matmul, &x)?.broadcast_add(bias),
                }
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Linear::PackedQ8 { weight, bias, rotation } => weight.forward(&rotate_input(x, *rotation)?, bias),
            #[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
            Linear::PackedQ4K { weight, bias, rotation } => weight.forward(&rotate_input(x, *rotation)?, bias),
            // Rotates each input row on the kernel's threads, as it quantizes it.
            #[cfg(target_arch = "x86_64")]
            Linear::PackedQ8 { weight, bias, rotation } => weight.forward(x, bias, *rotation),
        }
    }
}

/// The input as the stored weight expects it: rotated when the weight was (`super::rotation`).
fn rotate_input(x: &Tensor, rotation: Option<usize>) -> Result<Tensor> {
    match rotation {
        Some(block) => super::rotation::rotate_rows(x, block),
        None => Ok(x.clone()),
    }
}

/// Rows per product for Q4K weights on x86_64. From 32 rows up, candle switches to an AMX
/// kernel (where the CPU has AMX) that builds a second, AMX-tiled copy of the whole matrix and
/// keeps it next to the first: a roberta-base q4k bundle then needs ~4x its size in memory.
/// Below 32 rows every product uses the one packed copy, whatever the batch.
const Q4K_ROWS_PER_PRODUCT: usize = 31;

fn quantized_matmul(matmul: &QMatMul, x: &Tensor) -> Result<Tensor> {
    let q4k_on_x86 = cfg!(target_arch = "x86_64")
        && matches!(matmul, QMatMul::QTensor(q) if q.dtype() == candle_core::quantized::GgmlDType::Q4K);
    let k = x.dim(candle_core::D::Minus1)?;
    let rows = x.elem_count() / k.max(1);
    if !q4k_on_x86 || rows <= Q4K_ROWS_PER_PRODUCT {
        return matmul.forward(x);
    }
    let flat = x.reshape((rows, k))?;
    let parts = (0..rows)
        .step_by(Q4K_ROWS_PER_PRODUCT)
        .map(|start| matmul.forward(&flat.narrow(0, start, Q4K_ROWS_PER_PRODUCT.min(rows - start))?))
        .collect::<Result<Vec<_>>>()?;
    let y = Tensor::cat(&parts, 0)?;
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank >= 1") = y.dim(1)?;
    y.reshape(dims)
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

/// Softmax over the last dimension, for inference: simd128 in the browser (`wasm_ops`, where
/// candle's calls libm per value), vectorized and threaded natively (`native_ops`), candle's
/// on wasm without simd128.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::wasm_ops::softmax_last_dim(x);
    #[cfg(not(target_arch = "wasm32"))]
    return super::native_ops::softmax_last_dim(x);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    candle_nn::ops::softmax_last_dim(x)
}

/// Exact (erf) GELU, for inference: simd128 in the browser (`wasm_ops`), vectorized and threaded
/// natively (`native_ops`), candle's on wasm without simd128.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::wasm_ops::gelu_erf(x);
    #[cfg(not(target_arch = "wasm32"))]
    return super::native_ops::gelu_erf(x);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    x.gelu_erf()
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

    /// The norm of `a + b`: a residual connection and the norm after it, in one pass natively
    /// (`native_ops::add_layer_norm`).
    pub fn forward_sum(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        #[cfg(not(target_arch = "wasm32"))]
        if !self.differentiable {
            return super::native_ops::add_layer_norm(a, b, &self.weight, &self.bias, self.eps);
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

/// `x · Wᵀ + bias` through one of the packed kernels (`wasm_matmul`, `wasm_q4k`, `x86_matmul`)
/// for a weight `[n, k]`: checks `x` (`[.., k]`, f32) and `bias` (`[n]`, f32), then
/// `product(rows, x, bias, out)` must write every value of the `rows × n` output. The output is
/// not zeroed first: at batch 32 that memset was 2 % of a forward, on one thread while the
/// others waited.
#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
pub(crate) fn packed_product(
    x: &Tensor,
    bias: &Tensor,
    (n, k): (usize, usize),
    product: impl FnOnce(usize, &[f32], &[f32], &mut [MaybeUninit<f32>]),
) -> Result<Tensor> {
    let features = x.dim(candle_core::D::Minus1)?;
    if features != k {
        candle_core::bail!("matmul: input has {features} features, the weight {k}");
    }
    let rows = x.elem_count() / k.max(1);
    let x = x.contiguous()?;
    let bias = bias.contiguous()?;
    let mut out = Vec::with_capacity(rows * n);
    with_f32_slice(&x, |xs| {
        with_f32_slice(&bias, |bs| {
            if bs.len() != n {
                candle_core::bail!("bias has {} values for {n} outputs", bs.len());
            }
            product(rows, xs, bs, &mut out.spare_capacity_mut()[..rows * n]);
            // SAFETY: `product` wrote all `rows · n` values (its contract, above).
            unsafe { out.set_len(rows * n) };
            Ok(())
        })
    })?;
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("rank >= 1") = n;
    Tensor::from_vec(out, dims, x.device())
}

/// `out` set to zeros, for the kernels that take an initialized output (the wasm ones, where
/// the memset is small next to a product on one thread).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) fn zeroed(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    for v in out.iter_mut() {
        v.write(0.0);
    }
    // SAFETY: every value was just written.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Runs `f` on a contiguous f32 CPU tensor's values in place, without a copy: the kernels that
/// replace candle's ops (`wasm_matmul`, `x86_matmul`, `wasm_ops`, `native_ops`) read them so.
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "simd128")), allow(dead_code))]
pub(crate) fn with_f32_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else { candle_core::bail!("the kernel needs a CPU tensor") };
    let all = cpu.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the kernel needs a contiguous tensor")
    };
    f(&all[start..end])
}
