//! What a nightly run did and why, as JSON (for machines) and Markdown (for people).

use super::config::NightlyConfig;
use super::feedback_data::FeedbackData;
use super::gate::{Evaluations, GateResult};
use crate::eval::EvalReport;
use crate::monitor::Decision;
use crate::train::TrainSummary;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The monitor saw no reason to retrain.
    Hold,
    /// A challenger was trained and published as champion.
    Promoted,
    /// A challenger was not trained (too little feedback) or did not pass the gate.
    Rejected,
    /// Something went wrong; `reason` says what.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct NightlyReport {
    pub started_at: String,
    pub finished_at: String,
    pub outcome: Outcome,
    pub reason: String,
    pub registry: String,
    pub feedback: String,
    pub champion: Option<String>,
    pub forced: bool,
    pub monitor: Option<Decision>,
    pub data: Option<FeedbackData>,
    pub training: Option<TrainSummary>,
    pub challenger: Option<String>,
    pub evaluations: Option<Evaluations>,
    pub gate: Option<GateResult>,
    pub new_champion: Option<String>,
    pub config: NightlyConfig,
}

impl NightlyReport {
    pub fn new(cfg: &NightlyConfig, forced: bool) -> Self {
        NightlyReport {
            started_at: shared::Clock::system().now_rfc3339(),
            finished_at: String::new(),
            outcome: Outcome::Failed,
            reason: "did not finish".into(),
            registry: cfg.registry.clone(),
            feedback: cfg.feedback.clone(),
            champion: None,
            forced,
            monitor: None,
            data: None,
            training: None,
            challenger: None,
            evaluations: None,
            gate: None,
            new_champion: None,
            config: cfg.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let outcome = serde_json::to_value(self.outcome).expect("outcome").as_str().unwrap_or("").to_uppercase();
        let _ = writeln!(s, "# Nightly retraining run — {outcome}\n");
        let _ = writeln!(s, "{}\n", self.reason);
        let _ = writeln!(s, "- started {} · finished {}", self.started_at, self.finished_at);
        let _ = writeln!(s, "- registry `{}` · feedback `{}`", self.registry, self.feedback);
        let _ = writeln!(s, "- champion: {}", self.champion.as_deref().unwrap_or("—"));
        if let Some(v) = &self.new_champion {
            let _ = writeln!(s, "- **new champion: {v}**");
        }
        if self.forced {
            let _ = writeln!(s, "- retraining was forced (manual run)");
        }
        if let Some(m) = &self.monitor {
            let pct = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{:.1} %", v * 100.0));
            let _ = writeln!(s, "\n## Monitor ({})\n", m.metric);
            let _ = writeln!(s, "| n | agreement | 95 % CI | baseline | tolerance | decision |");
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            let _ = writeln!(
                s,
                "| {} | {} | {}–{} | {:.1} % | {:.1} pp | {} |",
                m.n,
                pct(m.accuracy),
                pct(m.ci_low),
                pct(m.ci_high),
                m.baseline * 100.0,
                m.tolerance * 100.0,
                m.decision
            );
            if let Some(psi) = m.psi {
                let _ = writeln!(
                    s,
                    "\nLabel mix shift (PSI): {psi:.3}{}",
                    if psi > 0.25 { " — a large shift" } else { "" }
                );
            }
        }
        if let Some(d) = &self.data {
            let _ = writeln!(s, "\n## Feedback data\n");
            let _ = writeln!(
                s,
                "{} records, {} distinct texts; {} label conflicts settled by majority, {} tied and dropped, {} with unknown labels; {} for training, {} held out.",
                d.records, d.unique_texts, d.conflicts_resolved, d.conflicts_dropped, d.unknown_labels, d.train_examples, d.holdout_examples
            );
        }
        if let Some(t) = &self.training {
            let _ = writeln!(s, "\n## Training\n");
            let _ = writeln!(
                s,
                "{} examples ({} replayed from the base data), {} steps, {:.0} s, {:.1} examples/s, final loss {}.",
                t.examples,
                t.replay_examples,
                t.steps,
                t.wall_seconds,
                t.examples_per_sec,
                t.final_loss.map_or("—".into(), |l| format!("{l:.4}"))
            );
        }
        if let Some(e) = &self.evaluations {
            let _ = writeln!(s, "\n## Evaluation (quantized bundles)\n");
            let _ = writeln!(s, "| model | set | n | accuracy | macro recall | macro F1 |");
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            let row = |s: &mut String, who: &str, set: &str, r: &EvalReport| {
                let _ = writeln!(
                    s,
                    "| {who} | {set} | {} | {:.2} % | {:.2} % | {:.2} % |",
                    r.n,
                    r.accuracy * 100.0,
                    r.macro_recall * 100.0,
                    r.macro_f1 * 100.0
                );
            };
            let champion = format!("champion {}", self.champion.as_deref().unwrap_or(""));
            let challenger = format!("challenger {}", self.challenger.as_deref().unwrap_or(""));
            row(&mut s, &champion, "gold", &e.champion_gold);
            row(&mut s, &challenger, "gold", &e.challenger_gold);
            row(&mut s, &champion, "feedback holdout", &e.champion_holdout);
            row(&mut s, &challenger, "feedback holdout", &e.challenger_holdout);
        }
        if let Some(g) = &self.gate {
            let _ = writeln!(s, "\n## Gate\n");
            let _ = writeln!(
                s,
                "Holdout gain {:+.2} pp (need ≥ {:.2}), gold change {:+.2} pp (may lose ≤ {:.2}): **{}**.",
                g.holdout_gain * 100.0,
                self.config.gate.min_holdout_gain * 100.0,
                -g.gold_loss * 100.0,
                self.config.gate.max_gold_loss * 100.0,
                if g.promote { "promote" } else { "reject" }
            );
        }
        s
    }

    /// Writes `nightly-<time>.json` and `.md` into `dir`; returns the Markdown path.
    pub fn write(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        std::fs::create_dir_all(dir)?;
        let stamp: String = self.started_at.chars().filter(char::is_ascii_digit).take(17).collect();
        let md = dir.join(format!("nightly-{stamp}.md"));
        let io = |e: crate::bundle_writer::BundleWriteError| std::io::Error::other(e.to_string());
        crate::bundle_writer::write_durably(&dir.join(format!("nightly-{stamp}.json")), self.to_json().as_bytes())
            .map_err(io)?;
        crate::bundle_writer::write_durably(&md, self.to_markdown().as_bytes()).map_err(io)?;
        Ok(md)
    }
}
