//! Choosing the challenger among candidates, on data the gate never sees.
//!
//! One fine-tune yields several candidates: the checkpoint after each epoch, each blended with
//! the champion at several mixing weights (WiSE-FT, `train::interpolate`). Every candidate is
//! quantized to q8_0 in memory (what a q8_0 champion ships; 3.5× faster than the float model
//! on 2 cores, and within 0.25 % of its predictions) and scored on the **guard set** (base-domain data that is not the gold set, e.g.
//! TweetEval validation) and on the **feedback validation split** (feedback kept out of training
//! and out of the holdout). The chosen one is the best on feedback validation among those that
//! lose at most `max_guard_loss` on the guard set against the champion; ties go to the one
//! closer to the champion. Gold and the holdout stay untouched until the gate judges the choice.

use super::config::{Metric, SelectConfig};
use crate::data::Example;
use crate::eval::EvalReport;
use crate::predict::{PredictError, Predictor};
use crate::train::{interpolate, TrainError};
use candle_core::Tensor;
use model::tokenize::TextEncoder;
use serde::Serialize;
use shared::config::ModelConfig;
use std::collections::HashMap;
use std::path::PathBuf;

/// A model's headline figures on one set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    pub n: u64,
    pub accuracy: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
}

impl From<&EvalReport> for Figures {
    fn from(r: &EvalReport) -> Self {
        Figures { n: r.n, accuracy: r.accuracy, macro_recall: r.macro_recall, macro_f1: r.macro_f1 }
    }
}

impl Figures {
    pub fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::Accuracy => self.accuracy,
            Metric::MacroRecall => self.macro_recall,
            Metric::MacroF1 => self.macro_f1,
        }
    }
}

/// One candidate and how it scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The fine-tune's epoch this candidate comes from (1-based).
    pub epoch: usize,
    /// WiSE-FT weight of the fine-tune: 0 is the champion, 1 the fine-tune itself.
    pub mixing_weight: f64,
    pub guard: Figures,
    pub validation: Figures,
    /// Champion minus candidate on the guard metric (positive: the candidate forgot).
    pub guard_loss: f64,
    /// Candidate minus champion on the validation metric.
    pub validation_gain: f64,
    /// Within the guard budget.
    pub eligible: bool,
}

/// All candidates, the champion's own figures, and which candidate was chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub champion_guard: Figures,
    pub champion_validation: Figures,
    pub guard_metric: Metric,
    pub validation_metric: Metric,
    pub max_guard_loss: f64,
    pub candidates: Vec<Candidate>,
    /// Index into `candidates`.
    pub chosen: usize,
    pub reason: String,
}

impl Selection {
    pub fn chosen(&self) -> &Candidate {
        &self.candidates[self.chosen]
    }
}

/// Picks a candidate from `(epoch, mixing weight, guard, validation)` figures: the best on the
/// validation metric among those within the guard budget; equal validation figures go to the
/// one that loses less on the guard set, then to the smaller mixing weight and the earlier
/// epoch (less drift from the champion). When none is within the budget, the one that loses
/// least on the guard set is taken, and the gate decides.
pub fn choose(
    champion_guard: Figures,
    champion_validation: Figures,
    scored: Vec<(usize, f64, Figures, Figures)>,
    cfg: &SelectConfig,
) -> Selection {
    assert!(!scored.is_empty(), "at least one candidate");
    let (gm, vm) = (cfg.guard_metric, cfg.validation_metric);
    let candidates: Vec<Candidate> = scored
        .into_iter()
        .map(|(epoch, mixing_weight, guard, validation)| {
            let guard_loss = champion_guard.get(gm) - guard.get(gm);
            Candidate {
                epoch,
                mixing_weight,
                guard,
                validation,
                guard_loss,
                validation_gain: validation.get(vm) - champion_validation.get(vm),
                eligible: guard_loss <= cfg.max_guard_loss + 1e-12,
            }
        })
        .collect();
    let closer = |a: &Candidate, b: &Candidate| {
        a.mixing_weight.total_cmp(&b.mixing_weight).then(a.epoch.cmp(&b.epoch)).reverse()
    };
    let pp = |x: f64| 100.0 * x;
    let best_eligible = candidates.iter().enumerate().filter(|(_, c)| c.eligible).max_by(|(_, a), (_, b)| {
        a.validation
            .get(vm)
            .total_cmp(&b.validation.get(vm))
            .then(b.guard_loss.total_cmp(&a.guard_loss))
            .then(closer(a, b))
    });
    let (chosen, reason) = match best_eligible {
        Some((i, c)) => (
            i,
            format!(
                "epoch {} at mixing weight {:.2}: best feedback-validation {} ({:+.2} pp) of the {} candidates losing at most {:.2} pp guard {}",
                c.epoch,
                c.mixing_weight,
                vm.name(),
                pp(c.validation_gain),
                candidates.iter().filter(|c| c.eligible).count(),
                pp(cfg.max_guard_loss),
                gm.name()
            ),
        ),
        None => {
            let (i, c) = candidates
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| a.guard_loss.total_cmp(&b.guard_loss).then(closer(a, b).reverse()))
                .expect("non-empty");
            (
                i,
                format!(
                    "no candidate stays within {:.2} pp on the guard set; the closest, epoch {} at mixing weight {:.2}, loses {:.2} pp",
                    pp(cfg.max_guard_loss),
                    c.epoch,
                    c.mixing_weight,
                    pp(c.guard_loss)
                ),
            )
        }
    };
    Selection {
        champion_guard,
        champion_validation,
        guard_metric: gm,
        validation_metric: vm,
        max_guard_loss: cfg.max_guard_loss,
        candidates,
        chosen,
        reason,
    }
}

/// What the candidates are made from.
pub struct CandidateSource<'a> {
    pub config: &'a ModelConfig,
    pub encoder: &'a TextEncoder,
    /// The champion's float weights (the blends' other end).
    pub champion: &'a HashMap<String, Tensor>,
    /// The fine-tune's checkpoint after each epoch, oldest first.
    pub epochs: &'a [(usize, PathBuf)],
}

/// Scores the champion and every (epoch, mixing weight) candidate on the guard set and the
/// feedback validation split, then chooses; returns the selection and the chosen weights.
pub fn evaluate_and_choose(
    src: &CandidateSource,
    guard: &[Example],
    validation: &[Example],
    cfg: &SelectConfig,
    mut progress: impl FnMut(&str),
) -> Result<(Selection, HashMap<String, Tensor>), SelectError> {
    let score = |tensors: HashMap<String, Tensor>| -> Result<(Figures, Figures), SelectError> {
        let p = Predictor::quantized_q8_0(src.config, &tensors, src.encoder.clone())?;
        Ok(((&p.evaluate(guard, 32, |_| {})?).into(), (&p.evaluate(validation, 32, |_| {})?).into()))
    };
    progress("champion");
    let (champion_guard, champion_validation) = score(src.champion.clone())?;
    let mut scored = Vec::new();
    let mut weights = mixing_weights(cfg);
    weights.retain(|&w| w > 0.0);
    for (epoch, dir) in src.epochs {
        let tuned = crate::checkpoint::Checkpoint::load(dir, &Default::default())
            .map_err(|e| SelectError::Train(TrainError::from(e)))?
            .weights
            .tensors;
        for &w in &weights {
            progress(&format!("epoch {epoch}, mixing weight {w:.2}"));
            let (g, v) = score(interpolate(src.champion, &tuned, w)?)?;
            scored.push((*epoch, w, g, v));
        }
    }
    let selection = choose(champion_guard, champion_validation, scored, cfg);
    let c = selection.chosen();
    let dir = &src.epochs.iter().find(|(e, _)| *e == c.epoch).expect("a scored epoch").1;
    let tuned = crate::checkpoint::Checkpoint::load(dir, &Default::default())
        .map_err(|e| SelectError::Train(TrainError::from(e)))?
        .weights
        .tensors;
    let chosen = interpolate(src.champion, &tuned, c.mixing_weight)?;
    Ok((selection, chosen))
}

/// The configured mixing weights, sorted, deduplicated, always with 1 (the plain fine-tune).
pub fn mixing_weights(cfg: &SelectConfig) -> Vec<f64> {
    let mut w: Vec<f64> = cfg.mixing_weights.iter().copied().chain([1.0]).collect();
    w.sort_by(f64::total_cmp);
    w.dedup();
    w
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Predict(#[from] PredictError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(accuracy: f64, macro_recall: f64) -> Figures {
        Figures { n: 100, accuracy, macro_recall, macro_f1: 0.0 }
    }

    fn cfg(max_guard_loss: f64) -> SelectConfig {
        SelectConfig { max_guard_loss, ..Default::default() }
    }

    #[test]
    fn the_best_validation_score_within_the_guard_budget_wins() {
        let champion = (f(0.70, 0.700), f(0.60, 0.0));
        let scored = vec![
            (2, 0.5, f(0.70, 0.699), f(0.70, 0.0)),
            (2, 1.0, f(0.69, 0.690), f(0.80, 0.0)), // best on feedback, but forgets 1 pp
            (1, 1.0, f(0.70, 0.697), f(0.74, 0.0)),
            (1, 0.5, f(0.70, 0.701), f(0.66, 0.0)),
        ];
        let s = choose(champion.0, champion.1, scored.clone(), &cfg(0.005));
        assert_eq!((s.chosen().epoch, s.chosen().mixing_weight), (1, 1.0), "{}", s.reason);
        assert!(!s.candidates[1].eligible && s.candidates[0].eligible);
        assert!((s.chosen().validation_gain - 0.14).abs() < 1e-12);
        // A looser budget lets the plain fine-tune in.
        let s = choose(champion.0, champion.1, scored, &cfg(0.02));
        assert_eq!((s.chosen().epoch, s.chosen().mixing_weight), (2, 1.0), "{}", s.reason);
    }

    #[test]
    fn ties_go_to_the_least_forgetful_then_the_closest_to_the_champion() {
        let champion = (f(0.70, 0.70), f(0.60, 0.0));
        let scored = vec![
            (2, 1.0, f(0.70, 0.70), f(0.70, 0.0)),
            (1, 0.5, f(0.70, 0.70), f(0.70, 0.0)),
            (2, 0.5, f(0.70, 0.70), f(0.70, 0.0)),
            (1, 1.0, f(0.70, 0.698), f(0.70, 0.0)),
        ];
        let s = choose(champion.0, champion.1, scored.clone(), &cfg(0.005));
        assert_eq!((s.chosen().epoch, s.chosen().mixing_weight), (1, 0.5), "{}", s.reason);
        let mut scored = scored;
        scored[0].2 = f(0.70, 0.701);
        let s = choose(champion.0, champion.1, scored, &cfg(0.005));
        assert_eq!((s.chosen().epoch, s.chosen().mixing_weight), (2, 1.0), "{}", s.reason);
    }

    #[test]
    fn without_an_eligible_candidate_the_least_forgetful_is_taken_and_the_reason_says_so() {
        let champion = (f(0.70, 0.70), f(0.60, 0.0));
        let scored = vec![(1, 1.0, f(0.6, 0.60), f(0.9, 0.0)), (1, 0.5, f(0.6, 0.68), f(0.8, 0.0))];
        let s = choose(champion.0, champion.1, scored, &cfg(0.005));
        assert_eq!(s.chosen().mixing_weight, 0.5);
        assert!(s.reason.contains("no candidate stays within 0.50 pp"), "{}", s.reason);
    }

    #[test]
    fn the_plain_fine_tune_is_always_a_candidate() {
        let c = SelectConfig { mixing_weights: vec![0.5, 0.25, 0.5], ..Default::default() };
        assert_eq!(mixing_weights(&c), [0.25, 0.5, 1.0]);
    }
}
