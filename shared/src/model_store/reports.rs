//! The nightly reports: `reports/index.json` and what a reader may rely on in
//! `reports/<stamp>.json`. The trainer writes the whole report (its `NightlyReport`, which holds
//! the run's data, training and selection besides); [`Report`] is the part the page shows, and
//! the monitor's decision, the guard's check and the gate's verdict are written with these very
//! types.

use crate::feedback::wilson_interval;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

open_names! {
    /// How a nightly run ended.
    pub enum Outcome {
        /// The monitor saw no reason to retrain.
        Hold = "hold",
        /// A challenger was trained and published as champion.
        Promoted = "promoted",
        /// A challenger was not trained (too little feedback) or did not pass the gate.
        Rejected = "rejected",
        /// The promotion guard restored the champion's parent.
        RolledBack = "rolled_back",
        /// Something went wrong; `reason` says what.
        Failed = "failed",
    }
    default: Outcome::Other(String::new());
}

/// One line of `reports/index.json`: a nightly report's summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexEntry {
    /// The report in the store, `reports/<stamp>.json`.
    pub file: String,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: Outcome,
    pub reason: String,
    /// The champion when the run started.
    pub champion: Option<String>,
    pub challenger: Option<String>,
    /// The version promoted (`promoted`) or restored (`rolled_back`).
    pub new_champion: Option<String>,
}

/// A nightly report, the parts a view shows beyond its [`IndexEntry`] (which has its times,
/// outcome, reason and versions).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Report {
    pub monitor: Option<MonitorDecision>,
    pub promotion_guard: Option<GuardCheck>,
    pub evaluations: Option<Evaluations>,
    pub gate: Option<GateResult>,
    pub config: ReportConfig,
}

/// The monitor's defaults (the nightly config's `[monitor]`, `sentiment-trainer monitor`'s flags):
/// the fewest feedback records it judges on, how far below its baseline the champion may be, and
/// the label-mix drift (PSI) it alerts at (0.25: the usual "significant shift").
pub const DEFAULT_MIN_SAMPLES: u64 = 200;
pub const DEFAULT_TOLERANCE: f64 = 0.02;
pub const DEFAULT_PSI_ALERT: f64 = 0.25;

/// The monitor's retrain decision (`monitor` in the report; `sentiment-trainer monitor` prints
/// it). A field a report lacks reads as the monitor's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorDecision {
    pub n: u64,
    /// Agreement on submitted feedback (label == prediction), `None` without records.
    pub accuracy: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub baseline: f64,
    /// `"retrain"` or `"hold"`.
    pub decision: String,
    pub reason: String,
    pub metric: String,
    pub model_version: String,
    pub min_samples: u64,
    pub tolerance: f64,
    /// Share of each label among the champion's feedback.
    pub label_mix: BTreeMap<String, f64>,
    pub reference_mix: Option<BTreeMap<String, f64>>,
    /// Population stability index of `label_mix` against `reference_mix` (> 0.25: a large shift).
    pub psi: Option<f64>,
    /// `psi` is above `psi_threshold`: the label mix has drifted. With the agreement interval
    /// below the baseline (tolerance aside), that alone is a reason to retrain.
    pub psi_alert: bool,
    pub psi_threshold: f64,
    pub records_total: u64,
    pub records_other_versions: u64,
    pub duplicates: u64,
    pub unreadable_lines: u64,
}

impl Default for MonitorDecision {
    #[inline]
    fn default() -> Self {
        MonitorDecision {
            n: 0,
            accuracy: None,
            ci_low: None,
            ci_high: None,
            baseline: 0.0,
            decision: String::new(),
            reason: String::new(),
            metric: String::new(),
            model_version: String::new(),
            min_samples: DEFAULT_MIN_SAMPLES,
            tolerance: DEFAULT_TOLERANCE,
            label_mix: BTreeMap::new(),
            reference_mix: None,
            psi: None,
            psi_alert: false,
            psi_threshold: DEFAULT_PSI_ALERT,
            records_total: 0,
            records_other_versions: 0,
            duplicates: 0,
            unreadable_lines: 0,
        }
    }
}

/// The promotion guard's check of a promoted champion against the parent it replaced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardCheck {
    pub champion: String,
    pub parent: String,
    /// When the champion was promoted: only feedback received since then counts.
    pub since: String,
    pub min_samples: u64,
    pub champion_agreement: Option<GuardAgreement>,
    pub parent_agreement: Option<GuardAgreement>,
    pub decision: GuardDecision,
    pub reason: String,
}

/// Agreement with the users on a set of records, with its Wilson 95 % interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardAgreement {
    pub n: u64,
    pub agreement: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl GuardAgreement {
    /// `successes` of `n` (z = 1.96, as the monitor's rule); `None` without records.
    #[inline]
    pub fn new(successes: u64, n: u64) -> Option<Self> {
        let [ci_low, ci_high] = wilson_interval(successes, n, 1.96)?;
        Some(GuardAgreement { n, agreement: successes as f64 / n as f64, ci_low, ci_high })
    }
}

open_names! {
    /// The promotion guard's verdict.
    pub enum GuardDecision {
        /// The champion holds up against its parent (or the two cannot be told apart).
        Keep = "keep",
        /// Fewer than `min_samples` records since the promotion: no verdict yet.
        TooFew = "too_few",
        /// Clearly worse than its parent: the parent is restored.
        Rollback = "rollback",
    }
    default: GuardDecision::Other(String::new());
}

/// The gate's verdict on the challenger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateResult {
    pub promote: bool,
    pub reason: String,
    /// Challenger minus champion, on the holdout metric.
    pub holdout_gain: f64,
    /// Champion minus challenger, on the gold metric (positive = the challenger is worse).
    pub gold_loss: f64,
    /// McNemar's z of the holdout gain.
    pub holdout_z: f64,
}

/// An evaluation's headline figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Figures {
    pub n: u64,
    pub accuracy: Option<f64>,
    pub macro_recall: Option<f64>,
    pub macro_f1: Option<f64>,
}

impl Figures {
    /// The figure a gate compares (`accuracy`, `macro_recall` or `macro_f1`).
    #[inline]
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "accuracy" => self.accuracy,
            "macro_recall" => self.macro_recall,
            "macro_f1" => self.macro_f1,
            _ => None,
        }
    }
}

/// The gate's inputs: both bundles on the gold set and on the feedback holdout.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Evaluations {
    pub champion_gold: Option<Figures>,
    pub challenger_gold: Option<Figures>,
    pub champion_holdout: Option<Figures>,
    pub challenger_holdout: Option<Figures>,
}

/// The run's config, the part a view shows.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ReportConfig {
    pub gate: GateConfig,
}

/// The gate's rule (`[gate]` of the trainer's config, whose own type refuses unknown keys).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct GateConfig {
    pub gold_metric: String,
    pub holdout_metric: String,
    pub max_gold_loss: Option<f64>,
    pub min_holdout_gain: Option<f64>,
}

impl Default for GateConfig {
    #[inline]
    fn default() -> Self {
        // The trainer's defaults.
        GateConfig {
            gold_metric: "macro_recall".into(),
            holdout_metric: "accuracy".into(),
            max_gold_loss: None,
            min_holdout_gain: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_decisions_keep_names_this_build_does_not_know() {
        let all = r#"["hold","promoted","rejected","rolled_back","failed","paused"]"#;
        let outcomes: Vec<Outcome> = serde_json::from_str(all).unwrap();
        assert_eq!(outcomes[3], Outcome::RolledBack);
        assert_eq!(outcomes[5].as_str(), "paused");
        assert_eq!(serde_json::to_string(&outcomes).unwrap(), all);
        let all = r#"["keep","too_few","rollback","later"]"#;
        let decisions: Vec<GuardDecision> = serde_json::from_str(all).unwrap();
        assert_eq!(decisions[1], GuardDecision::TooFew);
        assert_eq!(serde_json::to_string(&decisions).unwrap(), all);
    }

    #[test]
    fn reports_read_with_missing_and_unknown_fields() {
        let entry: IndexEntry = serde_json::from_str(r#"{"file": "reports/1.json", "extra": 1}"#).unwrap();
        assert_eq!((entry.file.as_str(), entry.outcome.as_str()), ("reports/1.json", ""));
        let r: Report = serde_json::from_str(
            r#"{"format_version": 1, "outcome": "promoted", "something_new": [1],
                "promotion_guard": {"champion": "v2", "decision": "keep", "champion_agreement": {"n": 3}},
                "gate": {"promote": true, "holdout_gain": 0.03},
                "evaluations": {"champion_gold": {"n": 10, "accuracy": 0.5, "macro_recall": 0.6}},
                "config": {"gate": {"max_gold_loss": 0.005, "min_holdout_z": 1.645}}}"#,
        )
        .unwrap();
        let guard = r.promotion_guard.unwrap();
        assert_eq!((guard.decision, guard.champion_agreement.unwrap().n), (GuardDecision::Keep, 3));
        assert_eq!(r.gate.unwrap().holdout_gain, 0.03);
        assert_eq!(r.evaluations.unwrap().champion_gold.unwrap().metric("macro_recall"), Some(0.6));
        assert_eq!((r.config.gate.gold_metric.as_str(), r.config.gate.max_gold_loss), ("macro_recall", Some(0.005)));
    }
}
