//! AdamW as PyTorch computes it (decoupled weight decay, bias correction, per-group weight
//! decay), global-norm gradient clipping, and the linear warm-up / linear decay schedule.

use candle_core::{bail, CpuStorage, InplaceOp1, Layout, Result, Shape, Storage, Tensor, Var};
use std::cell::RefCell;

/// Hyper-parameters shared by every parameter; weight decay is per parameter (its group).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// One trainable tensor with its Adam moments. The moments are plain vectors (row-major, the
/// parameter's shape): the update runs over them in one fused pass instead of a dozen tensor
/// ops, each allocating a parameter-sized buffer (a 12M-entry buffer for the word embeddings).
pub struct Param {
    pub name: String,
    pub var: Var,
    pub weight_decay: f64,
    m: Vec<f32>,
    v: Vec<f32>,
    /// The starting point L2-SP pulls toward (`AdamW::anchor_to_current`), if any.
    anchor: Option<Vec<f32>>,
}

impl Param {
    /// The first and second moments as tensors of the parameter's shape.
    pub fn moments(&self) -> Result<(Tensor, Tensor)> {
        let shape = self.var.shape();
        let dev = self.var.device();
        Ok((Tensor::from_slice(&self.m, shape, dev)?, Tensor::from_slice(&self.v, shape, dev)?))
    }

    /// Replaces both moments (e.g. from a saved training state).
    pub fn set_moments(&mut self, m: &Tensor, v: &Tensor) -> Result<()> {
        let shape = self.var.shape();
        for t in [m, v] {
            if t.shape() != shape {
                bail!("{}: moment shape {:?}, parameter shape {:?}", self.name, t.shape(), shape)
            }
        }
        self.m = m.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        self.v = v.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        Ok(())
    }
}

/// The no-decay rule of HF's Trainer: biases and LayerNorm weights get no weight decay.
pub fn decays(name: &str) -> bool {
    !(name.contains("bias") || name.contains("LayerNorm.weight"))
}

/// AdamW over named parameters. `step` counts completed updates (PyTorch's `state["step"]`).
pub struct AdamW {
    pub config: AdamWConfig,
    pub params: Vec<Param>,
    pub step: u64,
    /// L2-SP strength (Li et al. 2018): `l2sp·(θ − θ₀)` joins every gradient, θ₀ being the
    /// weights at `anchor_to_current`, as if `l2sp/2·‖θ − θ₀‖²` were added to the loss.
    pub l2sp: f64,
}

impl AdamW {
    /// Parameters in the given order (callers pass them sorted, so sums are reproducible).
    pub fn new(config: AdamWConfig, params: Vec<(String, Var)>, weight_decay: f64) -> Result<Self> {
        let params = params
            .into_iter()
            .map(|(name, var)| {
                let n = var.elem_count();
                let weight_decay = if decays(&name) { weight_decay } else { 0.0 };
                Param { name, var, weight_decay, m: vec![0.0; n], v: vec![0.0; n], anchor: None }
            })
            .collect();
        Ok(AdamW { config, params, step: 0, l2sp: 0.0 })
    }

    /// Pulls every later update toward the current weights with strength `l2sp` (L2-SP); 0
    /// turns the pull off. Keeps a copy of the weights (one more model's worth of memory).
    pub fn anchor_to_current(&mut self, l2sp: f64) -> Result<()> {
        self.l2sp = l2sp;
        for p in &mut self.params {
            p.anchor = if l2sp > 0.0 { Some(p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?) } else { None };
        }
        Ok(())
    }

    /// One update with learning rate `lr` from the (already clipped) gradients, in the order of
    /// `self.params`. A parameter without a gradient (`None`) is treated like PyTorch treats
    /// `p.grad is None`: skipped entirely.
    pub fn update(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        self.update_scaled(grads, 1.0, lr)
    }

    /// `update` with every gradient multiplied by `grad_scale` first (the clipping factor), so
    /// clipping needs no scaled copy of the gradients.
    pub fn update_scaled(&mut self, grads: &[Option<Tensor>], grad_scale: f64, lr: f64) -> Result<()> {
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        for (p, g) in self.params.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            with_f32_slice(g, p.var.shape(), |grad| {
                let kernel = AdamWKernel {
                    grad,
                    anchor: p.anchor.as_deref(),
                    l2sp: self.l2sp as f32,
                    m: RefCell::new(&mut p.m),
                    v: RefCell::new(&mut p.v),
                    scale: grad_scale as f32,
                    decay: (1.0 - lr * p.weight_decay) as f32,
                    one_minus_beta1: (1.0 - beta1) as f32,
                    beta2: beta2 as f32,
                    one_minus_beta2: (1.0 - beta2) as f32,
                    bc2_sqrt: bc2_sqrt as f32,
                    eps: eps as f32,
                    step_size: (lr / bc1) as f32,
                };
                p.var.as_tensor().inplace_op1(&kernel)
            })?;
        }
        Ok(())
    }
}

/// Runs `f` on the contiguous f32 values of `t` (a CPU tensor of `shape`), without a copy when
/// `t` is already contiguous f32.
fn with_f32_slice<R>(t: &Tensor, shape: &Shape, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    if t.shape() != shape {
        bail!("gradient shape {:?}, expected {:?}", t.shape(), shape)
    }
    let owned;
    let t = if t.is_contiguous() && t.dtype() == candle_core::DType::F32 {
        t
    } else {
        owned = t.to_dtype(candle_core::DType::F32)?.contiguous()?;
        &owned
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { bail!("training runs on the CPU") };
    let Some((start, end)) = layout.contiguous_offsets() else { bail!("non-contiguous tensor") };
    f(&cpu.as_slice::<f32>()?[start..end])
}

/// PyTorch's single-tensor AdamW step, element by element in f32 and in torch's operation order:
/// `p *= 1 - lr*wd; m.lerp_(g, 1-b1); v = v*b2 + (1-b2)*g*g;
/// p.addcdiv_(m, sqrt(v)/sqrt(bc2) + eps, -lr/bc1)`. With an anchor, `g` is the (clipped)
/// gradient plus `l2sp·(p − anchor)`.
struct AdamWKernel<'a> {
    grad: &'a [f32],
    anchor: Option<&'a [f32]>,
    l2sp: f32,
    m: RefCell<&'a mut [f32]>,
    v: RefCell<&'a mut [f32]>,
    scale: f32,
    decay: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    bc2_sqrt: f32,
    eps: f32,
    step_size: f32,
}

impl InplaceOp1 for AdamWKernel<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(data) = storage else { bail!("adamw: parameters must be f32") };
        let Some((start, end)) = layout.contiguous_offsets() else { bail!("adamw: non-contiguous parameter") };
        let theta = &mut data[start..end];
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if theta.len() != self.grad.len() || m.len() != theta.len() || v.len() != theta.len() {
            bail!("adamw: {} values, {} gradients, {}/{} moments", theta.len(), self.grad.len(), m.len(), v.len())
        }
        let update = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
            *m += (g - *m) * self.one_minus_beta1;
            *v = *v * self.beta2 + g * g * self.one_minus_beta2;
            let denom = v.sqrt() / self.bc2_sqrt + self.eps;
            *p = *p * self.decay - *m / denom * self.step_size;
        };
        let moments = m.iter_mut().zip(v.iter_mut());
        match self.anchor {
            None => {
                for ((p, &g), (m, v)) in theta.iter_mut().zip(self.grad).zip(moments) {
                    update(p, g * self.scale, m, v);
                }
            }
            Some(anchor) => {
                if anchor.len() != theta.len() {
                    bail!("adamw: {} values, {} anchor values", theta.len(), anchor.len())
                }
                for (((p, &g), (m, v)), &a) in theta.iter_mut().zip(self.grad).zip(moments).zip(anchor) {
                    let g = g * self.scale + self.l2sp * (*p - a);
                    update(p, g, m, v);
                }
            }
        }
        Ok(())
    }
}

/// The global L2 norm of all gradients, and the factor `clip_grad_norm_` scales them by
/// (`max_norm / (norm + 1e-6)` when that is below 1, else 1).
pub fn clip_coefficient(grads: &[Option<Tensor>], max_norm: f64) -> Result<(f64, f64)> {
    let mut sum = 0f64;
    for g in grads.iter().flatten() {
        sum += with_f32_slice(g, g.shape(), |xs| Ok(sum_of_squares(xs)))?;
    }
    let norm = sum.sqrt();
    let coef = max_norm / (norm + 1e-6);
    Ok((norm, if max_norm > 0.0 && coef < 1.0 { coef } else { 1.0 }))
}

/// Σ x², with eight f32 lanes (which the compiler vectorises) flushed into f64 every 4096
/// values, so a 12M-value gradient keeps f64-like accuracy at f32 speed.
fn sum_of_squares(xs: &[f32]) -> f64 {
    let mut total = 0f64;
    for block in xs.chunks(4096) {
        let mut lanes = [0f32; 8];
        let chunks = block.chunks_exact(8);
        let rest: f32 = chunks.remainder().iter().map(|x| x * x).sum();
        for c in chunks {
            for (l, x) in lanes.iter_mut().zip(c) {
                *l += x * x;
            }
        }
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + rest as f64;
    }
    total
}

/// HF's `get_linear_schedule_with_warmup`: the multiplier of the base learning rate for the
/// update with 0-based index `step`.
pub fn linear_schedule(step: u64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let rest = total.saturating_sub(warmup).max(1) as f64;
    (total.saturating_sub(step) as f64 / rest).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(linear_schedule(0, 10, 100), 0.0);
        assert_eq!(linear_schedule(5, 10, 100), 0.5);
        assert_eq!(linear_schedule(10, 10, 100), 1.0);
        assert_eq!(linear_schedule(55, 10, 100), 0.5);
        assert_eq!(linear_schedule(100, 10, 100), 0.0);
        assert_eq!(linear_schedule(0, 0, 4), 1.0);
    }

    #[test]
    fn no_decay_rule_matches_hf() {
        assert!(decays("encoder.layer.0.attention.self.query.weight"));
        assert!(decays("embeddings.word_embeddings.weight"));
        assert!(!decays("encoder.layer.0.output.LayerNorm.weight"));
        assert!(!decays("classifier.out_proj.bias"));
    }

    /// Two steps of AdamW on one scalar, against the formula written out by hand.
    #[test]
    fn two_steps_match_the_formula() -> Result<()> {
        let var = Var::from_slice(&[1.0f32], 1, &Device::Cpu)?;
        let mut opt = AdamW::new(AdamWConfig::default(), vec![("w.weight".into(), var.clone())], 0.1)?;
        let (lr, b1, b2, eps, wd) = (0.01f64, 0.9f64, 0.999f64, 1e-8f64, 0.1f64);
        let (mut p, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for (t, g) in [(1, 0.5f64), (2, -0.25f64)] {
            opt.update(&[Some(Tensor::from_slice(&[g as f32], 1, &Device::Cpu)?)], lr)?;
            p *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let mh = m / (1.0 - b1.powi(t));
            let vh = v / (1.0 - b2.powi(t));
            p -= lr * mh / (vh.sqrt() + eps);
        }
        let got = var.as_tensor().to_vec1::<f32>()?[0] as f64;
        assert!((got - p).abs() < 1e-6, "{got} vs {p}");
        Ok(())
    }

    /// L2-SP adds `l2sp·(θ − θ₀)` to the gradient: with a zero data gradient the weight moves
    /// back toward its anchor; two steps match the formula written out by hand.
    #[test]
    fn l2sp_pulls_toward_the_anchor() -> Result<()> {
        let var = Var::from_slice(&[1.0f32], 1, &Device::Cpu)?;
        let mut opt = AdamW::new(AdamWConfig::default(), vec![("w.bias".into(), var.clone())], 0.0)?;
        opt.anchor_to_current(0.5)?;
        var.set(&Tensor::from_slice(&[3.0f32], 1, &Device::Cpu)?)?;
        let (lr, b1, b2, eps, l2sp, anchor) = (0.1f64, 0.9f64, 0.999f64, 1e-8f64, 0.5f64, 1.0f64);
        let (mut p, mut m, mut v) = (3.0f64, 0.0f64, 0.0f64);
        for (t, data_grad) in [(1, 0.0f64), (2, 0.2f64)] {
            opt.update(&[Some(Tensor::from_slice(&[data_grad as f32], 1, &Device::Cpu)?)], lr)?;
            let g = data_grad + l2sp * (p - anchor);
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            p -= lr * (m / (1.0 - b1.powi(t))) / ((v / (1.0 - b2.powi(t))).sqrt() + eps);
        }
        let got = var.as_tensor().to_vec1::<f32>()?[0] as f64;
        assert!((got - p).abs() < 1e-6 && got < 3.0, "{got} vs {p}");
        Ok(())
    }
}
