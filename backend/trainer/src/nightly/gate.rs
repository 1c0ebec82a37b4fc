//! The promotion gate: a challenger replaces the champion only if it is clearly better where
//! the users said the champion was wrong **and** not worse on the fixed gold test set.
//!
//! "Clearly better" is two conditions on the feedback holdout: a gain of at least
//! `min_holdout_gain`, and a gain that chance does not explain. Both models judge the same
//! holdout texts, so only the texts where exactly one of them is right tell them apart: `b`
//! where only the challenger is, `c` where only the champion is. Under "no difference" each such
//! text is a coin flip, and `z = (b − c) / √(b + c)` (McNemar's test, normal form) must reach
//! `min_holdout_z` (1.645: one-sided 95 %). The same arithmetic sets `min_holdout`: a gain `g`
//! with a share `ℓ` of texts only the champion gets right is `b − c = g·n`, `b + c = (g + 2ℓ)·n`,
//! `z = g·√n / √(g + 2ℓ)`; with g = 2 pp and the ℓ = 1.15 % seen on real drift (docs/loop.md)
//! it reaches 1.645 only from n = 292 texts; the default minimum is 300.

use super::config::GateConfig;
use crate::eval::EvalReport;
use serde::Serialize;
pub use shared::model_store::GateResult;

/// Both models' evaluations on the two sets.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluations {
    pub champion_gold: EvalReport,
    pub challenger_gold: EvalReport,
    pub champion_holdout: EvalReport,
    pub challenger_holdout: EvalReport,
    pub holdout_pairs: Discordant,
}

/// Holdout texts on which exactly one model is right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Discordant {
    /// Only the challenger is right.
    pub challenger_only: u64,
    /// Only the champion is right.
    pub champion_only: u64,
}

impl Discordant {
    /// From each model's predicted label and the true one, text by text.
    pub fn count(truth: &[usize], champion: &[usize], challenger: &[usize]) -> Self {
        let mut d = Discordant::default();
        for ((t, a), b) in truth.iter().zip(champion).zip(challenger) {
            match (a == t, b == t) {
                (false, true) => d.challenger_only += 1,
                (true, false) => d.champion_only += 1,
                _ => {}
            }
        }
        d
    }

    /// McNemar's z: how many standard errors the challenger's gain is from no difference.
    pub fn z(&self) -> f64 {
        let (b, c) = (self.challenger_only as f64, self.champion_only as f64);
        if b + c == 0.0 {
            0.0
        } else {
            (b - c) / (b + c).sqrt()
        }
    }
}

pub fn judge(e: &Evaluations, g: &GateConfig) -> GateResult {
    let (hm, gm) = (g.holdout_metric, g.gold_metric);
    let holdout_gain = hm.of(&e.challenger_holdout) - hm.of(&e.champion_holdout);
    let gold_loss = gm.of(&e.champion_gold) - gm.of(&e.challenger_gold);
    let pp = |x: f64| x * 100.0;
    let holdout_z = e.holdout_pairs.z();
    let gain_ok = holdout_gain >= g.min_holdout_gain - 1e-12 && holdout_z >= g.min_holdout_z;
    let gold_ok = gold_loss <= g.max_gold_loss + 1e-12;
    let gain_text = format!(
        "feedback holdout {} {:+.2} pp ({:.2} % → {:.2} %, need ≥ +{:.2} pp), z {:.2} ({} texts only the challenger gets right, {} only the champion; need ≥ {:.2})",
        hm.name(),
        pp(holdout_gain),
        pp(hm.of(&e.champion_holdout)),
        pp(hm.of(&e.challenger_holdout)),
        pp(g.min_holdout_gain),
        holdout_z,
        e.holdout_pairs.challenger_only,
        e.holdout_pairs.champion_only,
        g.min_holdout_z
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
    GateResult { promote: gain_ok && gold_ok, reason, holdout_gain, gold_loss, holdout_z }
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
        // The challenger is right on every text the champion gets right, and on ch − 50 more.
        let e = |ch: usize, cg: usize| Evaluations {
            champion_gold: report(700, 1000),
            challenger_gold: report(cg, 1000),
            champion_holdout: report(50, 100),
            challenger_holdout: report(ch, 100),
            holdout_pairs: Discordant { challenger_only: ch as u64 - 50, champion_only: 0 },
        };
        assert!(judge(&e(53, 700), &g).promote); // +3 pp, z = √3, gold equal
        assert!(judge(&e(60, 695), &g).promote); // gold -0.5 pp: allowed
        let r = judge(&e(60, 694), &g); // gold -0.6 pp
        assert!(!r.promote && r.reason.contains("worse on the gold set"), "{}", r.reason);
        let r = judge(&e(51, 720), &g); // +1 pp only
        assert!(!r.promote && r.reason.contains("not better on feedback"), "{}", r.reason);
        assert!((judge(&e(51, 720), &g).gold_loss + 0.02).abs() < 1e-12);
        // +2 pp with no loss on 100 texts is z = √2 = 1.41: chance explains it.
        let r = judge(&e(52, 700), &g);
        assert!(!r.promote && r.reason.contains("z 1.41"), "{}", r.reason);
        // The same +2 pp made of 12 wins and 10 losses: z = 0.43.
        let mut mixed = e(52, 700);
        mixed.holdout_pairs = Discordant { challenger_only: 12, champion_only: 10 };
        assert!(!judge(&mixed, &g).promote);
    }

    #[test]
    fn discordant_pairs_count_texts_where_exactly_one_model_is_right() {
        let truth = [0, 1, 2, 0, 1, 2];
        let champion = [0, 1, 0, 1, 1, 0];
        let challenger = [0, 2, 2, 0, 1, 2];
        let d = Discordant::count(&truth, &champion, &challenger);
        assert_eq!(d, Discordant { challenger_only: 3, champion_only: 1 });
        assert!((d.z() - 1.0).abs() < 1e-12);
        assert_eq!(Discordant::default().z(), 0.0);
    }
}
