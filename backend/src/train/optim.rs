//! AdamW as PyTorch computes it (decoupled weight decay, bias correction, per-group weight
//! decay), global-norm gradient clipping, and the linear warm-up / linear decay schedule.

use candle_core::{Result, Tensor, Var};

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

/// One trainable tensor with its Adam moments.
pub struct Param {
    pub name: String,
    pub var: Var,
    pub weight_decay: f64,
    pub m: Tensor,
    pub v: Tensor,
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
}

impl AdamW {
    /// Parameters in the given order (callers pass them sorted, so sums are reproducible).
    pub fn new(config: AdamWConfig, params: Vec<(String, Var)>, weight_decay: f64) -> Result<Self> {
        let params = params
            .into_iter()
            .map(|(name, var)| {
                let m = var.as_tensor().zeros_like()?;
                let v = m.clone();
                let weight_decay = if decays(&name) { weight_decay } else { 0.0 };
                Ok(Param { name, var, weight_decay, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { config, params, step: 0 })
    }

    /// One update with learning rate `lr` from the (already clipped) gradients, in the order of
    /// `self.params`. A parameter without a gradient (`None`) is treated like PyTorch treats
    /// `p.grad is None`: skipped entirely.
    pub fn update(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        for (p, g) in self.params.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            // torch: p.mul_(1 - lr * wd); m.lerp_(g, 1 - b1); v.mul_(b2).addcmul_(g, g, 1 - b2);
            // denom = v.sqrt() / sqrt(bc2) + eps; p.addcdiv_(m, denom, -lr / bc1)
            let theta = p.var.as_tensor();
            let theta =
                if p.weight_decay != 0.0 { theta.affine(1.0 - lr * p.weight_decay, 0.0)? } else { theta.clone() };
            p.m = (&p.m + (g - &p.m)?.affine(1.0 - beta1, 0.0)?)?;
            p.v = (p.v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
            let denom = p.v.sqrt()?.affine(1.0 / bc2_sqrt, eps)?;
            let next = (theta - (&p.m / denom)?.affine(lr / bc1, 0.0)?)?;
            p.var.set(&next)?;
        }
        Ok(())
    }
}

/// The global L2 norm of all gradients, and the factor `clip_grad_norm_` scales them by
/// (`max_norm / (norm + 1e-6)` when that is below 1, else 1).
pub fn clip_coefficient(grads: &[Option<Tensor>], max_norm: f64) -> Result<(f64, f64)> {
    let mut sum = 0f64;
    for g in grads.iter().flatten() {
        sum += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sum.sqrt();
    let coef = max_norm / (norm + 1e-6);
    Ok((norm, if max_norm > 0.0 && coef < 1.0 { coef } else { 1.0 }))
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
}
