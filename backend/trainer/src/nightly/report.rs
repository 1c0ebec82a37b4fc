//! What a nightly run did and why, as JSON (for machines) and Markdown (for people).

use super::config::NightlyConfig;
use super::feedback_data::FeedbackData;
use super::gate::{Evaluations, GateResult};
use super::promotion_guard::GuardCheck;
use super::screen::Screening;
use super::select::Selection;
use crate::eval::EvalReport;
use crate::monitor::MonitorDecision;
use crate::registry::{ModelStore, RegistryError};
use crate::train::TrainSummary;
use hub::AddFile;
use serde::Serialize;
pub use shared::model_store::{IndexEntry, Outcome};
use shared::model_store::{REPORTS_DIR, REPORT_INDEX_FILE};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Bumped when a field changes meaning or disappears (new fields may appear at any time).
pub const REPORT_FORMAT_VERSION: u32 = 1;
/// Entries kept in the index.
pub const INDEX_ENTRIES: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct NightlyReport {
    pub format_version: u32,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: Outcome,
    pub reason: String,
    pub registry: String,
    pub feedback: String,
    pub champion: Option<String>,
    pub forced: bool,
    pub screening: Option<Screening>,
    pub promotion_guard: Option<GuardCheck>,
    pub monitor: Option<MonitorDecision>,
    pub data: Option<FeedbackData>,
    pub training: Option<TrainSummary>,
    pub selection: Option<Selection>,
    pub challenger: Option<String>,
    pub evaluations: Option<Evaluations>,
    pub gate: Option<GateResult>,
    pub new_champion: Option<String>,
    /// Where this report was published in the model store (`reports/<stamp>.json`), or why not.
    pub store_report: Option<String>,
    pub store_report_error: Option<String>,
    pub config: NightlyConfig,
}

impl NightlyReport {
    pub fn new(cfg: &NightlyConfig, forced: bool) -> Self {
        NightlyReport {
            format_version: REPORT_FORMAT_VERSION,
            started_at: shared::Clock::system().now_rfc3339(),
            finished_at: String::new(),
            outcome: Outcome::Failed,
            reason: "did not finish".into(),
            registry: cfg.registry.clone(),
            feedback: cfg.feedback.clone(),
            champion: None,
            forced,
            screening: None,
            promotion_guard: None,
            monitor: None,
            data: None,
            training: None,
            selection: None,
            challenger: None,
            evaluations: None,
            gate: None,
            new_champion: None,
            store_report: None,
            store_report_error: None,
            config: cfg.clone(),
        }
    }

    /// `YYYYMMDDHHMMSSmmm` of the start: names the report files.
    pub fn stamp(&self) -> String {
        self.started_at.chars().filter(char::is_ascii_digit).take(17).collect()
    }

    /// The report as the model store gets it: the config's local paths (data files, scratch
    /// space) reduced to their file names, since the store may be public.
    pub fn public_json(&self) -> String {
        let mut r = self.clone();
        let name = |p: &mut PathBuf| {
            if let Some(n) = p.file_name() {
                *p = PathBuf::from(n);
            }
        };
        let c = &mut r.config;
        for p in [&mut c.gold_test, &mut c.work_dir, &mut c.report_dir] {
            name(p);
        }
        for p in [c.guard_set.as_mut(), c.replay_data.as_mut()].into_iter().flatten() {
            name(p);
        }
        for loc in [&mut c.registry, &mut c.feedback, &mut r.registry, &mut r.feedback] {
            if !crate::location::Location::parse(loc).is_hub() {
                *loc = Path::new(loc.as_str()).file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
            }
        }
        r.to_json()
    }

    /// Writes `reports/<stamp>.json` into the store and puts it at the top of
    /// `reports/index.json`, in one change; returns the report's path in the store.
    pub fn publish_to(&self, store: &dyn ModelStore) -> Result<String, RegistryError> {
        if store.read(crate::registry::REGISTRY_FILE)?.is_none() {
            // A mistyped location must not become a store holding nothing but reports.
            return Err(RegistryError::NoChampion(store.location()));
        }
        let file = format!("{REPORTS_DIR}/{}.json", self.stamp());
        let mut index: Vec<IndexEntry> = match store.read(REPORT_INDEX_FILE)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
                location: store.location(),
                detail: format!("{REPORT_INDEX_FILE}: {e}"),
            })?,
            None => Vec::new(),
        };
        index.retain(|e| e.file != file);
        index.insert(
            0,
            IndexEntry {
                file: file.clone(),
                started_at: self.started_at.clone(),
                finished_at: self.finished_at.clone(),
                outcome: self.outcome.clone(),
                reason: self.reason.clone(),
                champion: self.champion.clone(),
                challenger: self.challenger.clone(),
                new_champion: self.new_champion.clone(),
            },
        );
        index.truncate(INDEX_ENTRIES);
        let files = [
            AddFile { path: file.clone(), content: self.public_json().into_bytes() },
            AddFile {
                path: REPORT_INDEX_FILE.into(),
                content: serde_json::to_vec_pretty(&index).expect("index serializes"),
            },
        ];
        store.write(&files, &format!("Nightly report {}: {}", self.stamp(), self.outcome.as_str()))?;
        Ok(file)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let outcome = self.outcome.as_str().to_uppercase();
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
        match (&self.store_report, &self.store_report_error) {
            (Some(p), _) => {
                let _ = writeln!(s, "- published in the model store as `{p}`");
            }
            (None, Some(e)) => {
                let _ = writeln!(s, "- **not published in the model store**: {e}");
            }
            _ => {}
        }
        if let Some(g) = &self.promotion_guard {
            let _ = writeln!(s, "\n## Promotion guard\n");
            let _ = writeln!(s, "{}.", g.reason);
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
                    if m.psi_alert {
                        format!(" — **drift alert** (above {:.2}): the feedback's labels are spread very differently from what the champion was trained on", m.psi_threshold)
                    } else {
                        String::new()
                    }
                );
            }
        }
        if let Some(sc) = &self.screening {
            if sc.kept < sc.records {
                let _ = writeln!(
                    s,
                    "\nLeft out of {} feedback records: {} for a model version the registry never published, {} whose `predicted` is not the argmax of its scores.",
                    sc.records, sc.unknown_model_version, sc.predicted_not_argmax
                );
            }
        }
        if let Some(d) = &self.data {
            let _ = writeln!(s, "\n## Feedback data\n");
            let _ = writeln!(
                s,
                "{} records, {} distinct texts; {} label conflicts settled by majority, {} tied and dropped, {} with unknown labels, {} like a gold or guard text kept out; {} for training, {} for validation (choices), {} held out (the gate).",
                d.records, d.unique_texts, d.conflicts_resolved, d.conflicts_dropped, d.unknown_labels, d.gold_like_removed, d.train_examples, d.validation_examples, d.holdout_examples
            );
            let _ = writeln!(
                s,
                "\nClients: {} ({} records without a client key, each counted as its own); the largest sent {:.1} % of the votes; {} repeated votes replaced by the same client's latest; cap {} votes a client: {} records capped from {} clients; {} votes dropped because the text was voted on from a higher-ranked side.",
                d.clients,
                d.records_without_client,
                100.0 * d.largest_client_share,
                d.repeated_votes,
                d.client_cap,
                d.records_capped,
                d.clients_capped,
                d.cross_side_votes
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
        if let Some(sel) = &self.selection {
            let (gm, vm) = (sel.guard_metric, sel.validation_metric);
            let _ = writeln!(s, "\n## Candidates (scored at q8_0)\n");
            let _ = writeln!(s, "{}.\n", sel.reason);
            let _ = writeln!(
                s,
                "| epoch | mixing weight | guard {} (n {}) | feedback validation {} (n {}) | within the guard budget ({:.2} pp) |",
                gm.name(),
                sel.champion_guard.n,
                vm.name(),
                sel.champion_validation.n,
                sel.max_guard_loss * 100.0
            );
            let _ = writeln!(s, "|---|---|---|---|---|");
            let _ = writeln!(
                s,
                "| champion | 0 | {:.2} % | {:.2} % | |",
                sel.champion_guard.get(gm) * 100.0,
                sel.champion_validation.get(vm) * 100.0
            );
            for (i, c) in sel.candidates.iter().enumerate() {
                let mark = if i == sel.chosen {
                    "**chosen**"
                } else if c.eligible {
                    "yes"
                } else {
                    "no"
                };
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | {:.2} % ({:+.2} pp) | {:.2} % ({:+.2} pp) | {mark} |",
                    c.epoch,
                    c.mixing_weight,
                    c.guard.get(gm) * 100.0,
                    -c.guard_loss * 100.0,
                    c.validation.get(vm) * 100.0,
                    c.validation_gain * 100.0
                );
            }
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
                "Holdout gain {:+.2} pp (need ≥ {:.2}) at z {:.2} (need ≥ {:.2}), gold change {:+.2} pp (may lose ≤ {:.2}): **{}**.",
                g.holdout_gain * 100.0,
                self.config.gate.min_holdout_gain * 100.0,
                g.holdout_z,
                self.config.gate.min_holdout_z,
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
        let stamp = self.stamp();
        let md = dir.join(format!("nightly-{stamp}.md"));
        let io = |e: crate::bundle_writer::BundleWriteError| std::io::Error::other(e.to_string());
        crate::bundle_writer::write_durably(&dir.join(format!("nightly-{stamp}.json")), self.to_json().as_bytes())
            .map_err(io)?;
        crate::bundle_writer::write_durably(&md, self.to_markdown().as_bytes()).map_err(io)?;
        Ok(md)
    }
}
