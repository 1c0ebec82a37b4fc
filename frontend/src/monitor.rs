//! The monitor view's data, as plain logic (the view is `app/monitor.rs`): what it reads —
//! the server's `GET /api/feedback/stats`, and from the model store `registry.json`,
//! `reports/index.json` and `reports/<stamp>.json` (docs/nightly-report.md) — and what it derives
//! from them: agreement per version and per day with its Wilson 95 % band, and the label mix of
//! feedback against the champion's training mix.
//!
//! Every field the view does not need is ignored and every field it reads may be missing, so a
//! store written by an older or newer `sentiment-trainer` still shows what it has.

use serde::Deserialize;
use serde_json::Value;
pub use shared::feedback::psi;
use shared::feedback::{wilson_interval, FeedbackStats, Z_95};
use std::collections::BTreeMap;

pub const REGISTRY_FILE: &str = "registry.json";
pub const REPORT_INDEX_FILE: &str = "reports/index.json";
/// How many of the newest nightly reports the view opens.
pub const REPORTS_SHOWN: usize = 5;
/// How many of the newest days with feedback the agreement chart covers, per version.
pub const DAYS_SHOWN: usize = 30;
/// The label-mix drift level the trainer alerts at unless its config says otherwise
/// (`monitor.psi_alert`; 0.25 is the usual "significant shift").
pub const DEFAULT_PSI_ALERT: f64 = 0.25;
/// What `/api/feedback/stats` lists beyond its 20 busiest model versions.
pub const OTHER_VERSIONS: &str = "(other)";

/// `registry.json` of the model store.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Registry {
    pub champion: Option<String>,
    pub versions: Vec<VersionEntry>,
    pub history: Vec<ChampionChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VersionEntry {
    pub version: String,
    pub parent_version: Option<String>,
    pub created_at: String,
    pub published_at: String,
    pub quantization: String,
    pub metrics: BTreeMap<String, Value>,
}

impl VersionEntry {
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).and_then(Value::as_f64)
    }

    /// The agreement the monitor expects of this version (`agreement_baseline`).
    pub fn baseline(&self) -> Option<f64> {
        self.metric("agreement_baseline")
    }

    /// The share of each label in this version's training data (`label_mix`), if recorded.
    pub fn label_mix(&self) -> Option<BTreeMap<String, f64>> {
        self.metrics.get("label_mix").and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// A change of champion: `published` (by hand), `promoted` (nightly's gate) or `rollback`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChampionChange {
    pub at: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub kind: String,
}

impl Default for ChampionChange {
    fn default() -> Self {
        // Entries written before kinds existed were all `publish`es.
        ChampionChange {
            at: String::new(),
            from: None,
            to: String::new(),
            reason: String::new(),
            kind: "published".into(),
        }
    }
}

impl Registry {
    pub fn get(&self, version: &str) -> Option<&VersionEntry> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn champion_entry(&self) -> Option<&VersionEntry> {
        self.champion.as_deref().and_then(|c| self.get(c))
    }
}

/// One line of `reports/index.json` (newest first).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IndexEntry {
    pub file: String,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: String,
    pub reason: String,
    pub champion: Option<String>,
    pub challenger: Option<String>,
    pub new_champion: Option<String>,
}

/// A nightly report, the parts the view shows.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Report {
    pub started_at: String,
    pub finished_at: String,
    pub outcome: String,
    pub reason: String,
    pub champion: Option<String>,
    pub challenger: Option<String>,
    pub new_champion: Option<String>,
    pub monitor: Option<MonitorDecision>,
    pub promotion_guard: Option<GuardCheck>,
    pub evaluations: Option<Evaluations>,
    pub gate: Option<Gate>,
    pub config: ReportConfig,
}

/// The retrain decision (`monitor` in the report).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MonitorDecision {
    pub n: u64,
    pub accuracy: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub baseline: Option<f64>,
    pub tolerance: Option<f64>,
    pub min_samples: Option<u64>,
    pub decision: String,
    pub reason: String,
    pub model_version: String,
    pub label_mix: BTreeMap<String, f64>,
    pub reference_mix: Option<BTreeMap<String, f64>>,
    pub psi: Option<f64>,
    pub psi_alert: bool,
    pub psi_threshold: Option<f64>,
}

/// The promotion guard's check of a promoted champion against its parent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GuardCheck {
    pub champion: String,
    pub parent: String,
    pub since: String,
    pub min_samples: Option<u64>,
    pub champion_agreement: Option<GuardAgreement>,
    pub parent_agreement: Option<GuardAgreement>,
    pub decision: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GuardAgreement {
    pub n: u64,
    pub agreement: f64,
    pub ci_low: f64,
    pub ci_high: f64,
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
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "accuracy" => self.accuracy,
            "macro_recall" => self.macro_recall,
            "macro_f1" => self.macro_f1,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Evaluations {
    pub champion_gold: Option<Figures>,
    pub challenger_gold: Option<Figures>,
    pub champion_holdout: Option<Figures>,
    pub challenger_holdout: Option<Figures>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Gate {
    pub promote: bool,
    pub reason: String,
    pub holdout_gain: Option<f64>,
    pub gold_loss: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ReportConfig {
    pub gate: GateConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct GateConfig {
    pub gold_metric: String,
    pub holdout_metric: String,
    pub max_gold_loss: Option<f64>,
    pub min_holdout_gain: Option<f64>,
}

impl Default for GateConfig {
    fn default() -> Self {
        // The trainer's defaults (nightly/config.rs).
        GateConfig {
            gold_metric: "macro_recall".into(),
            holdout_metric: "accuracy".into(),
            max_gold_loss: None,
            min_holdout_gain: None,
        }
    }
}

/// One row of the gate's figures side by side: the metric on one data set for the champion
/// and the challenger, and the rule the challenger had to meet.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRow {
    /// `gold` or `holdout`.
    pub set: &'static str,
    pub metric: String,
    pub champion: Option<f64>,
    pub challenger: Option<f64>,
    /// Holdout: the least gain; gold: the most loss.
    pub limit: Option<f64>,
}

impl GateRow {
    /// Challenger minus champion.
    pub fn delta(&self) -> Option<f64> {
        Some(self.challenger? - self.champion?)
    }
}

impl Report {
    /// The gate's inputs side by side (empty when the run stopped before the gate).
    pub fn gate_rows(&self) -> Vec<GateRow> {
        let Some(e) = &self.evaluations else { return Vec::new() };
        let g = &self.config.gate;
        let row = |set, metric: &str, a: Option<Figures>, b: Option<Figures>, limit| GateRow {
            set,
            metric: metric.to_string(),
            champion: a.and_then(|f| f.metric(metric)),
            challenger: b.and_then(|f| f.metric(metric)),
            limit,
        };
        vec![
            row("holdout", &g.holdout_metric, e.champion_holdout, e.challenger_holdout, g.min_holdout_gain),
            row("gold", &g.gold_metric, e.champion_gold, e.challenger_gold, g.max_gold_loss),
        ]
    }
}

/// Agreement of users with the model: `agree` of `n` records had `label == predicted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreement {
    pub n: u64,
    pub agree: u64,
}

impl Agreement {
    /// From a stats answer (its `agreement` is `agree / total`, so the count is recovered exactly).
    pub fn of(stats: &FeedbackStats) -> Agreement {
        let agree = stats.agreement.map_or(0, |a| (a * stats.total as f64).round() as u64);
        Agreement { n: stats.total, agree: agree.min(stats.total) }
    }

    pub fn share(&self) -> Option<f64> {
        (self.n > 0).then(|| self.agree as f64 / self.n as f64)
    }

    /// Wilson 95 % interval, as the monitor computes it.
    pub fn ci95(&self) -> Option<[f64; 2]> {
        wilson_interval(self.agree, self.n, Z_95)
    }

    /// `self` minus `later` (records since a day minus records since the next day).
    pub fn minus(&self, later: &Agreement) -> Agreement {
        Agreement { n: self.n.saturating_sub(later.n), agree: self.agree.saturating_sub(later.agree) }
    }
}

/// The days a version has feedback on (from its stats' `by_day`), the newest `DAYS_SHOWN`,
/// oldest first.
pub fn days_to_query(stats: &FeedbackStats) -> Vec<String> {
    let days: Vec<String> = stats.by_day.keys().cloned().collect();
    days[days.len().saturating_sub(DAYS_SHOWN)..].to_vec()
}

/// Agreement per day from agreement "since each day" (the stats API filters by `since`, not by
/// day): `cumulative[i]` counts every record from `days[i]` on, so day i alone is
/// `cumulative[i] − cumulative[i + 1]`. `days` ascending and without gaps among days with
/// records (as [`days_to_query`] gives them).
pub fn daily_from_cumulative(cumulative: &[(String, Agreement)]) -> Vec<(String, Agreement)> {
    cumulative
        .iter()
        .enumerate()
        .map(|(i, (day, since))| {
            let day_only = match cumulative.get(i + 1) {
                Some((_, next)) => since.minus(next),
                None => *since,
            };
            (day.clone(), day_only)
        })
        .collect()
}

/// The model versions the stats list, busiest first, without the `(other)` bucket.
pub fn versions_with_feedback(stats: &FeedbackStats) -> Vec<String> {
    let mut v: Vec<(&String, &u64)> = stats.by_model_version.iter().filter(|(k, _)| *k != OTHER_VERSIONS).collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(k, _)| k.clone()).collect()
}

/// Each label's share of `counts`.
pub fn mix(counts: &BTreeMap<String, u64>) -> BTreeMap<String, f64> {
    let total: u64 = counts.values().sum();
    counts.iter().map(|(l, &c)| (l.clone(), if total == 0 { 0.0 } else { c as f64 / total as f64 })).collect()
}

/// How large a label-mix shift is, by the usual PSI reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// Below 0.1.
    None,
    /// 0.1 up to the alert level.
    Moderate,
    /// Above the alert level.
    Alert,
}

pub fn drift(psi: f64, alert: f64) -> Drift {
    if psi > alert {
        Drift::Alert
    } else if psi >= 0.1 {
        Drift::Moderate
    } else {
        Drift::None
    }
}

/// `base` (ends with `/`) joined with a store path such as `reports/2026….json`.
pub fn store_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(total: u64, agreement: Option<f64>) -> FeedbackStats {
        FeedbackStats {
            total,
            by_label: BTreeMap::new(),
            by_day: BTreeMap::new(),
            by_model_version: BTreeMap::new(),
            agreement,
            agreement_ci95: None,
        }
    }

    #[test]
    fn agreement_counts_are_recovered_exactly_from_the_shares_the_server_sends() {
        for n in [1u64, 3, 7, 250, 1000, 123_457] {
            for agree in [0, 1, n / 3, n / 2, n - 1, n] {
                let a = Agreement::of(&stats(n, Some(agree as f64 / n as f64)));
                assert_eq!((a.n, a.agree), (n, agree));
            }
        }
        assert_eq!(Agreement::of(&stats(0, None)), Agreement { n: 0, agree: 0 });
    }

    #[test]
    fn the_band_is_the_monitors_wilson_interval() {
        // 160 of 200: Wilson 95 % is 0.73914-0.84955 (computed apart, in Python, from the formula).
        let [lo, hi] = Agreement { n: 200, agree: 160 }.ci95().unwrap();
        assert!((lo - 0.73914).abs() < 1e-5 && (hi - 0.84955).abs() < 1e-5, "{lo} {hi}");
        assert_eq!(Agreement::default().ci95(), None);
    }

    #[test]
    fn days_come_from_differences_of_since_queries() {
        let cum = vec![
            ("2026-12-01".to_string(), Agreement { n: 900, agree: 700 }),
            ("2026-12-02".to_string(), Agreement { n: 500, agree: 420 }),
            ("2026-12-04".to_string(), Agreement { n: 100, agree: 95 }),
        ];
        let daily = daily_from_cumulative(&cum);
        assert_eq!(
            daily.iter().map(|(d, a)| (d.as_str(), a.n, a.agree)).collect::<Vec<_>>(),
            [("2026-12-01", 400, 280), ("2026-12-02", 400, 325), ("2026-12-04", 100, 95)]
        );
        // Records that arrive between two queries never make a day negative.
        let racy = [("a".to_string(), Agreement { n: 5, agree: 5 }), ("b".to_string(), Agreement { n: 6, agree: 6 })];
        assert_eq!(daily_from_cumulative(&racy)[0].1, Agreement { n: 0, agree: 0 });
    }

    #[test]
    fn drift_reads_psi_by_the_usual_levels() {
        assert_eq!(drift(0.01, DEFAULT_PSI_ALERT), Drift::None);
        assert_eq!(drift(0.15, DEFAULT_PSI_ALERT), Drift::Moderate);
        assert_eq!(drift(0.88, DEFAULT_PSI_ALERT), Drift::Alert);
    }

    #[test]
    fn reports_and_registries_read_with_missing_and_unknown_fields() {
        let r: Report = serde_json::from_str(
            r#"{"format_version": 1, "outcome": "promoted", "something_new": [1],
                "evaluations": {"champion_gold": {"n": 10, "accuracy": 0.5, "macro_recall": 0.6},
                                "challenger_gold": {"n": 10, "macro_recall": 0.58},
                                "champion_holdout": {"accuracy": 0.7}, "challenger_holdout": {"accuracy": 0.8}},
                "config": {"gate": {"gold_metric": "macro_recall", "holdout_metric": "accuracy",
                                    "max_gold_loss": 0.005, "min_holdout_gain": 0.02}}}"#,
        )
        .unwrap();
        let rows = r.gate_rows();
        assert_eq!(rows[0].set, "holdout");
        assert!((rows[0].delta().unwrap() - 0.1).abs() < 1e-12);
        assert_eq!((rows[1].champion, rows[1].challenger, rows[1].limit), (Some(0.6), Some(0.58), Some(0.005)));
        assert!(Report::default().gate_rows().is_empty());

        let reg: Registry = serde_json::from_str(
            r#"{"format_version": 1, "champion": "v2",
                "versions": [{"version": "v1", "metrics": {"agreement_baseline": 0.8,
                                                          "label_mix": {"negative": 0.5, "positive": 0.5}}},
                             {"version": "v2"}],
                "history": [{"at": "t", "to": "v1", "reason": "first"},
                            {"at": "u", "from": "v1", "to": "v2", "reason": "gate", "kind": "promoted"}]}"#,
        )
        .unwrap();
        assert_eq!(reg.champion_entry().unwrap().version, "v2");
        assert_eq!(reg.get("v1").unwrap().baseline(), Some(0.8));
        assert_eq!(reg.get("v1").unwrap().label_mix().unwrap()["negative"], 0.5);
        assert_eq!(reg.history[0].kind, "published");
        assert_eq!(reg.history[1].kind, "promoted");
    }

    #[test]
    fn the_other_bucket_is_not_a_version() {
        let mut s = stats(30, Some(0.5));
        s.by_model_version = BTreeMap::from([("v1".into(), 10), ("v2".into(), 15), (OTHER_VERSIONS.into(), 5)]);
        assert_eq!(versions_with_feedback(&s), ["v2", "v1"]);
        assert_eq!(store_url("http://x/model/", "/reports/index.json"), "http://x/model/reports/index.json");
    }
}
