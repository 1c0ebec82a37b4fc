//! Layer norm, GELU and softmax as single ops with hand-written gradients, for training.
//!
//! candle's fused kernels for these have no backward pass, and the differentiable versions
//! are built from 5-12 elementwise tensor ops each, whose backward adds as many again: on a
//! MiniLM training step those small ops (each allocating its output) cost more time than the
//! matrix products. Each op here is one pass forward and one pass backward over plain slices,
//! computing the same formulas as PyTorch.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Storage, Tensor};

/// The contiguous f32 values of a CPU tensor (copied only when it is not contiguous f32).
fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()
}

/// Borrows the contiguous f32 slice behind a storage and layout.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else { bail!("{op}: f32 only") };
    let Some((start, end)) = l.contiguous_offsets() else { bail!("{op}: needs a contiguous input") };
    Ok(&data[start..end])
}

/// Runs `f` on a tensor's contiguous f32 values without copying when possible.
fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    if t.is_contiguous() && t.dtype() == candle_core::DType::F32 {
        let (storage, layout) = t.storage_and_layout();
        if let Storage::Cpu(cpu) = &*storage {
            return Ok(f(slice(cpu, layout, "values")?));
        }
    }
    Ok(f(&values(t)?))
}

/// LayerNorm over the last dimension: `(x - mean) / sqrt(var + eps) * weight + bias`, with the
/// biased variance, as `torch.nn.LayerNorm`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    x.contiguous()?.apply_op3(weight, bias, LayerNorm { eps })
}

struct LayerNorm {
    eps: f32,
}

/// Mean and 1/std of one row, accumulated in f64.
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm-train"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(xs, xl, "layer norm")?, slice(ws, wl, "layer norm")?, slice(bs, bl, "layer norm")?);
        let h = w.len();
        if h == 0 || b.len() != h || x.len() % h != 0 {
            bail!("layer norm: {} values, weight {}, bias {}", x.len(), h, b.len())
        }
        let mut out = vec![0f32; x.len()];
        for (row, o) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
            let (mean, rstd) = row_stats(row, self.eps);
            for (((o, &v), &w), &b) in o.iter_mut().zip(row).zip(w).zip(b) {
                *o = (v - mean) * rstd * w + b;
            }
        }
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (x_vals, w) = (values(x)?, values(weight)?);
        let h = w.len();
        let mut dx = vec![0f32; x_vals.len()];
        let mut dw = vec![0f64; h];
        let mut db = vec![0f64; h];
        with_values(grad, |dy| {
            let mut xhat = vec![0f32; h];
            let mut g = vec![0f32; h];
            for ((row, dy), dx) in x_vals.chunks_exact(h).zip(dy.chunks_exact(h)).zip(dx.chunks_exact_mut(h)) {
                let (mean, rstd) = row_stats(row, self.eps);
                let (mut sum_g, mut sum_gx) = (0f64, 0f64);
                for i in 0..h {
                    xhat[i] = (row[i] - mean) * rstd;
                    g[i] = dy[i] * w[i];
                    dw[i] += (dy[i] * xhat[i]) as f64;
                    db[i] += dy[i] as f64;
                    sum_g += g[i] as f64;
                    sum_gx += (g[i] * xhat[i]) as f64;
                }
                let (mean_g, mean_gx) = ((sum_g / h as f64) as f32, (sum_gx / h as f64) as f32);
                for i in 0..h {
                    dx[i] = rstd * (g[i] - mean_g - xhat[i] * mean_gx);
                }
            }
        })?;
        let dev = x.device();
        let dw: Vec<f32> = dw.into_iter().map(|v| v as f32).collect();
        let db: Vec<f32> = db.into_iter().map(|v| v as f32).collect();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, weight.shape(), dev)?),
            Some(Tensor::from_vec(db, weight.shape(), dev)?),
        ))
    }
}

/// GELU with the exact erf, as `torch.nn.functional.gelu` (and candle's `gelu_erf`).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(GeluErf)
}

struct GeluErf;

fn normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-train"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        // The same expression as candle's gelu_erf, so training and inference agree exactly.
        let x = slice(s, l, "gelu")?;
        let out = x
            .iter()
            .map(|&v| (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * v)
            .collect();
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    /// d/dx x·Φ(x) = Φ(x) + x·φ(x). Φ(x) is recovered as y / x from the forward's output instead
    /// of a second erf, except near 0 where that quotient loses precision.
    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        let (x_vals, y) = (values(x)?, values(res)?);
        let dx = with_values(grad, |dy| {
            x_vals
                .iter()
                .zip(&y)
                .zip(dy)
                .map(|((&x, &y), &dy)| {
                    let cdf = if x.abs() > 1e-2 { y / x } else { normal_cdf(x) };
                    dy * (cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp())
                })
                .collect::<Vec<f32>>()
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-train"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "softmax")?;
        let n = l.dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; x.len()];
        for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (o, &v) in o.iter_mut().zip(row) {
                *o = (v - max).exp();
                sum += *o;
            }
            for o in o.iter_mut() {
                *o /= sum;
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    /// dx = y · (dy − Σ dy·y), per row.
    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let y = values(res)?;
        let n = x.dims().last().copied().unwrap_or(1).max(1);
        let dx = with_values(grad, |dy| {
            let mut dx = vec![0f32; y.len()];
            for ((y, dy), dx) in y.chunks_exact(n).zip(dy.chunks_exact(n)).zip(dx.chunks_exact_mut(n)) {
                // Accumulated in f64: each row of dx sums to 0 exactly in theory, and the key
                // biases' gradient (exactly 0, see tests/train_step.rs) is that rounding noise.
                let dot = y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32;
                for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
                    *dx = y * (dy - dot);
                }
            }
            dx
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// Gradients of `sum(op(x) * r)` for a fixed random `r`, from the op and from candle's
    /// composed reference (autograd through elementwise ops).
    fn grads(
        shape: (usize, usize, usize),
        op: impl Fn(&Tensor) -> Result<Tensor>,
        reference: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<(Vec<f32>, Vec<f32>, f32)> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2.0, shape, &dev)?))?;
        let r = Tensor::randn(0f32, 1.0, shape, &dev)?;
        let ours = op(x.as_tensor())?;
        let theirs = reference(x.as_tensor())?;
        let fwd = (&ours - &theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        let g1 = (ours * &r)?.sum_all()?.backward()?;
        let g2 = (theirs * &r)?.sum_all()?.backward()?;
        Ok((values(g1.get(x.as_tensor()).unwrap())?, values(g2.get(x.as_tensor()).unwrap())?, fwd))
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32) {
        let d = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d <= tol, "max diff {d}");
    }

    #[test]
    fn softmax_matches_the_composed_op() -> Result<()> {
        let (a, b, fwd) = grads((2, 3, 7), softmax_last_dim, |x| candle_nn::ops::softmax(x, D::Minus1))?;
        assert!(fwd < 1e-6);
        assert_close(&a, &b, 1e-5);
        Ok(())
    }

    #[test]
    fn gelu_matches_the_composed_op() -> Result<()> {
        let (a, b, fwd) = grads((2, 3, 50), gelu_erf, |x| x.gelu_erf())?;
        assert_eq!(fwd, 0.0);
        // candle's own backward uses 0.398942 for 1/sqrt(2π) (ours: 0.3989423).
        assert_close(&a, &b, 1e-5);
        Ok(())
    }

    #[test]
    fn layer_norm_matches_the_composed_op_for_all_inputs() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0.5f32, 2.0, (3, 5, 16), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 16, &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, 16, &dev)?)?;
        let r = Tensor::randn(0f32, 1.0, (3, 5, 16), &dev)?;
        let ours = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12)?;
        let theirs = candle_nn::ops::layer_norm_slow(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12)?;
        assert_close(&values(&ours)?, &values(&theirs)?, 1e-5);
        let g1 = (ours * &r)?.sum_all()?.backward()?;
        let g2 = (theirs * &r)?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            assert_close(&values(g1.get(v.as_tensor()).unwrap())?, &values(g2.get(v.as_tensor()).unwrap())?, 1e-4);
        }
        Ok(())
    }
}
