//! The promotion gate: a challenger replaces the champion only if it is clearly better where
//! the users said the champion was wrong **and** not worse on the fixed gold test set.

use super::config::GateConfig;
use crate::eval::EvalReport;
use serde::Serialize;

/// Both models' evaluations on the two sets.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluations {
    pub champion_gold: EvalReport,
    pub challenger_gold: EvalReport,
    pub champion_holdout: EvalReport,
    pub challenger_holdout: EvalReport,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GateResult {
    pub promote: bool,
    pub reason: String,
    /// Challenger minus champion, on the holdout metric.
    pub holdout_gain: f64,
    /// Champion minus challenger, on the gold metric (positive = the challenger is worse).
    pub gold_loss: f64,
}

pub fn judge(e: &Evaluations, g: &GateConfig) -> GateResult {
    let (hm, gm) = (g.holdout_metric, g.gold_metric);
    let holdout_gain = hm.of(&e.challenger_holdout) - hm.of(&e.champion_holdout);
    let gold_loss = gm.of(&e.champion_gold) - gm.of(&e.challenger_gold);
    let pp = |x: f64| x * 100.0;
    let gain_ok = holdout_gain >= g.min_holdout_gain - 1e-12;
    let gold_ok = gold_loss <= g.max_gold_loss + 1e-12;
    let gain_text = format!(
        "feedback holdout {} {:+.2} pp ({:.2} % → {:.2} %, need ≥ +{:.2} pp)",
        hm.name(),
        pp(holdout_gain),
        pp(hm.of(&e.champion_holdout)),
        pp(hm.of(&e.challenger_holdout)),
        pp(g.min_holdout_gain)
    );
    let gold_text = format!(
        "gold {} {:+.2} pp ({:.2} % → {:.2} %, may lose ≤ {:.2} pp)",
        gm.name(),
        -pp(gold_loss),
        pp(gm.of(&e.champion_gold)),
        pp(gm.of(&e.challenger_gold)),
        pp(g.max_gold_loss)
    );
    let reason = match (gain_ok, gold_ok) {
        (true, true) => format!("better on feedback and not worse on gold: {gain_text}; {gold_text}"),
        (false, true) => format!("not better on feedback: {gain_text}; {gold_text}"),
        (true, false) => format!("worse on the gold set: {gold_text}; {gain_text}"),
        (false, false) => format!("not better on feedback and worse on gold: {gain_text}; {gold_text}"),
    };
    GateResult { promote: gain_ok && gold_ok, reason, holdout_gain, gold_loss }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(correct: usize, n: usize) -> EvalReport {
        let labels: Vec<String> = ["negative", "neutral", "positive"].map(String::from).to_vec();
        let gold: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let predicted: Vec<usize> =
            gold.iter().enumerate().map(|(i, &g)| if i < correct { g } else { (g + 1) % 3 }).collect();
        EvalReport::new(&labels, &gold, &predicted)
    }

    #[test]
    fn promotes_only_on_a_clear_feedback_gain_without_a_gold_loss() {
        let g = GateConfig {
            holdout_metric: super::super::config::Metric::Accuracy,
            gold_metric: super::super::config::Metric::Accuracy,
            ..Default::default()
        };
        let e = |ch: usize, cg: usize| Evaluations {
            champion_gold: report(700, 1000),
            challenger_gold: report(cg, 1000),
            champion_holdout: report(50, 100),
            challenger_holdout: report(ch, 100),
        };
        assert!(judge(&e(52, 700), &g).promote); // +2 pp, gold equal
        assert!(judge(&e(60, 695), &g).promote); // gold -0.5 pp: allowed
        let r = judge(&e(60, 694), &g); // gold -0.6 pp
        assert!(!r.promote && r.reason.contains("worse on the gold set"), "{}", r.reason);
        let r = judge(&e(51, 720), &g); // +1 pp only
        assert!(!r.promote && r.reason.contains("not better on feedback"), "{}", r.reason);
        assert!((judge(&e(51, 720), &g).gold_loss + 0.02).abs() < 1e-12);
    }
}
