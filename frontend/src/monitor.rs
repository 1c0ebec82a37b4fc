//! The monitor view's data, as plain logic (the view is `app/monitor.rs`): what it reads —
//! the server's `GET /api/feedback/stats`, and from the model store `registry.json`,
//! `reports/index.json` and `reports/<stamp>.json` (docs/nightly-report.md) — and what it derives
//! from them: agreement per version and per day with its Wilson 95 % band, and the label mix of
//! feedback against the champion's training mix.
//!
//! Every field the view does not need is ignored and every field it reads may be missing, so a
//! store written by an older or newer `sentiment-trainer` still shows what it has: the files are
//! read with the trainer's own types (`shared::model_store`, lenient that way), and the trainer's
//! tests read what it writes back through them.

pub use shared::feedback::psi;
use shared::feedback::{wilson_interval, FeedbackStats, Z_95};
use shared::model_store::{Figures, Report};
use std::collections::BTreeMap;

/// How many of the newest nightly reports the view opens.
pub const REPORTS_SHOWN: usize = 5;
/// How many of the newest days with feedback the agreement chart covers, per version.
pub const DAYS_SHOWN: usize = 30;
/// What `/api/feedback/stats` lists beyond its 20 busiest model versions.
pub const OTHER_VERSIONS: &str = "(other)";

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

/// The gate's inputs side by side (empty when the run stopped before the gate).
pub fn gate_rows(report: &Report) -> Vec<GateRow> {
    let Some(e) = &report.evaluations else { return Vec::new() };
    let g = &report.config.gate;
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
    use shared::model_store::DEFAULT_PSI_ALERT;

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
    fn the_gate_rows_pair_each_sets_figures_with_its_rule() {
        let r: Report = serde_json::from_str(
            r#"{"format_version": 1, "outcome": "promoted", "something_new": [1],
                "evaluations": {"champion_gold": {"n": 10, "accuracy": 0.5, "macro_recall": 0.6},
                                "challenger_gold": {"n": 10, "macro_recall": 0.58},
                                "champion_holdout": {"accuracy": 0.7}, "challenger_holdout": {"accuracy": 0.8}},
                "config": {"gate": {"gold_metric": "macro_recall", "holdout_metric": "accuracy",
                                    "max_gold_loss": 0.005, "min_holdout_gain": 0.02}}}"#,
        )
        .unwrap();
        let rows = gate_rows(&r);
        assert_eq!(rows[0].set, "holdout");
        assert!((rows[0].delta().unwrap() - 0.1).abs() < 1e-12);
        assert_eq!((rows[1].champion, rows[1].challenger, rows[1].limit), (Some(0.6), Some(0.58), Some(0.005)));
        assert!(gate_rows(&Report::default()).is_empty());
    }

    #[test]
    fn the_other_bucket_is_not_a_version() {
        let mut s = stats(30, Some(0.5));
        s.by_model_version = BTreeMap::from([("v1".into(), 10), ("v2".into(), 15), (OTHER_VERSIONS.into(), 5)]);
        assert_eq!(versions_with_feedback(&s), ["v2", "v1"]);
        assert_eq!(store_url("http://x/model/", "/reports/index.json"), "http://x/model/reports/index.json");
    }
}
