//! `sentiment-trainer nightly`: pull feedback → monitor → (if needed) fine-tune from the
//! champion on the feedback plus a replay sample of the base training data → choose the
//! challenger among the epochs and their blends with the champion on the guard set and the
//! feedback validation split (`select`) → quantize it → evaluate champion and challenger on the
//! fixed gold test set and the feedback holdout → promote (publish + registry) only through the
//! gate. Every run ends in a report.

pub mod config;
pub mod feedback_data;
pub mod gate;
pub mod promotion_guard;
pub mod report;
pub mod screen;
pub mod select;

use crate::bundle_writer::{write_bundle, write_durably, BundleInfo, CalibrationTexts, CALIBRATION_TEXTS};
use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::data::{load_examples, Example};
use crate::location::Location;
use crate::monitor::{assess, manifest_reference, read_feedback, Thresholds};
use crate::predict::Predictor;
use crate::registry::{
    self, fetch_version, open_store, public_source, publish, rollback, ChangeKind, Expect, PublishOptions, Registry,
    RegistryError,
};
use crate::train::run::load_base;
use crate::train::state::write_hf_checkpoint;
use crate::train::{Progress, TrainOptions};
pub use config::NightlyConfig;
use feedback_data::LabelledText;
use gate::Evaluations;
use promotion_guard::{GuardCheck, GuardDecision};
pub use report::{NightlyReport, Outcome};
use select::CandidateSource;
use serde_json::json;
use shared::bundle::{Manifest, MANIFEST_FILE};
use shared::feedback::parse_timestamp_millis;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

/// Anything that stops a run; the report records it as `failed`.
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Default)]
pub struct NightlyOptions {
    /// Retrain even when the monitor says hold (a manual run).
    pub force_retrain: bool,
}

/// Runs once. Never panics on bad input: failures end up in the report as `failed`.
pub fn run(cfg: &NightlyConfig, opts: &NightlyOptions, on_step: impl FnMut(&Progress)) -> NightlyReport {
    let mut report = NightlyReport::new(cfg, opts.force_retrain);
    let _night = tracing::info_span!("nightly", started_at = %report.started_at).entered();
    if let Err(e) = run_inner(cfg, opts, &mut report, on_step) {
        let mut msg = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let c_text = c.to_string();
            if !msg.contains(&c_text) {
                msg = format!("{msg}: {c_text}");
            }
            cause = c.source();
        }
        report.outcome = Outcome::Failed;
        report.reason = msg.replace('\n', " ");
    }
    report.finished_at = shared::Clock::system().now_rfc3339();
    // Into the model store too, where the monitor view reads it; a failure here is reported,
    // not fatal: the run's outcome stands and the local report is still written.
    let published = open_store(&cfg.registry).map_err(RegistryError::from).and_then(|store| report.publish_to(&*store));
    match published {
        Ok(path) => report.store_report = Some(path),
        Err(e) => {
            tracing::warn!("could not publish the report into the model store: {e}");
            report.store_report_error = Some(e.to_string());
        }
    }
    report
}

/// Leaves the current stage's span (if any) and enters the next one's, so the night's log and
/// its timings (`RUST_LOG=sentiment_trainer=info`) read stage by stage.
fn enter_stage(current: &mut Option<tracing::span::EnteredSpan>, name: &'static str) {
    current.take();
    *current = Some(tracing::info_span!("stage", stage = name).entered());
}

/// Deletes all but the newest `keep` run folders (`run-<time>`) in `work_dir`; their names are
/// start times of one length, so they sort by age. Other entries are left alone, and a folder
/// that cannot be deleted is logged and left: pruning never fails a run.
fn prune_runs(work_dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(work_dir) else { return };
    let mut runs: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("run-") && e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    runs.sort();
    for dir in &runs[..runs.len().saturating_sub(keep)] {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => tracing::info!("deleted the old run folder {}", dir.display()),
            Err(e) => tracing::warn!("could not delete the old run folder {}: {e}", dir.display()),
        }
    }
}

fn label_examples(texts: &[LabelledText], labels: &[String]) -> Vec<Example> {
    texts
        .iter()
        .map(|t| Example {
            text: t.text.clone(),
            label: labels.iter().position(|l| *l == t.label).expect("known label"),
        })
        .collect()
}

fn mix(texts: &[&LabelledText], labels: &[String]) -> BTreeMap<String, f64> {
    labels
        .iter()
        .map(|l| (l.clone(), texts.iter().filter(|t| t.label == *l).count() as f64 / texts.len().max(1) as f64))
        .collect()
}

/// Runs the promotion guard when the champion got there by a promotion of this loop and its
/// parent is in the registry; fetches the parent only when there are enough records to judge.
fn guard_champion(
    cfg: &NightlyConfig,
    store: &dyn crate::registry::ModelStore,
    registry: &Registry,
    champion: &crate::registry::VersionEntry,
    records: &[shared::FeedbackRecord],
    run_dir: &Path,
) -> Result<Option<GuardCheck>, RunError> {
    let Some(change) = registry.last_change_to(&champion.version).filter(|c| c.kind == ChangeKind::Promoted) else {
        return Ok(None);
    };
    let Some(parent) = champion.parent_version.as_deref().and_then(|p| registry.get(p)) else { return Ok(None) };
    let since = promotion_guard::since_promotion(records, &champion.version, &change.at);
    let check = promotion_guard::check(
        &champion.version,
        &parent.version,
        &change.at,
        &since,
        &cfg.promotion_guard,
        |texts| -> Result<Vec<String>, RunError> {
            tracing::info!("running the parent {} on {} posts for the promotion guard", parent.version, texts.len());
            let fetched = fetch_version(store, parent, &run_dir.join("parent"))?;
            let p = Predictor::open_bundle(&fetched.bundle)?;
            Ok(p.predict_many(texts, 32, |_| {})?.into_iter().map(|p| p.label).collect())
        },
    )?;
    Ok(Some(check))
}

fn run_inner(
    cfg: &NightlyConfig,
    opts: &NightlyOptions,
    report: &mut NightlyReport,
    on_step: impl FnMut(&Progress),
) -> Result<(), RunError> {
    let mut stage = None;
    enter_stage(&mut stage, "load");
    let store = open_store(&cfg.registry)?;
    let registry = registry::load(&*store)?;
    let champion = registry::champion_entry(&registry, &store.location())?.clone();
    report.champion = Some(champion.version.clone());
    let stamp: String = report.started_at.chars().filter(char::is_ascii_digit).take(17).collect();
    let run_dir = cfg.work_dir.join(format!("run-{stamp}"));
    // Only the manifest for now: most nights end at the monitor, without the weights.
    let manifest_path = format!("{}/{MANIFEST_FILE}", champion.path);
    let manifest_bytes = store
        .read(&manifest_path)?
        .ok_or_else(|| format!("{}: {manifest_path} is missing, though the registry lists it", store.location()))?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    let labels = manifest.labels.clone();

    // 1. Screen the feedback.
    let mut set = read_feedback(&cfg.feedback)?;
    let versions: BTreeSet<&str> = registry.versions.iter().map(|v| v.version.as_str()).collect();
    let (kept, screening) = screen::screen(std::mem::take(&mut set.records), &versions);
    set.records = kept;
    report.screening = Some(screening);

    // 2. The promotion guard: a champion this loop promoted is watched against its parent.
    enter_stage(&mut stage, "promotion_guard");
    if let Some(check) = guard_champion(cfg, &*store, &registry, &champion, &set.records, &run_dir)? {
        let rollback_to = (check.decision == GuardDecision::Rollback).then(|| check.parent.clone());
        report.reason = check.reason.clone();
        report.promotion_guard = Some(check);
        if let Some(parent) = rollback_to {
            rollback(&*store, &parent, &report.reason, &shared::Clock::system().now_rfc3339())?;
            report.new_champion = Some(parent);
            report.outcome = Outcome::RolledBack;
            return Ok(());
        }
    }

    // 3. Monitor.
    enter_stage(&mut stage, "monitor");
    let (recorded, reference_mix) = manifest_reference(&manifest.metrics);
    let baseline = recorded.or(cfg.monitor.baseline).ok_or(crate::monitor::MonitorError::NoBaseline)?;
    let t = Thresholds {
        min_samples: cfg.monitor.min_samples,
        tolerance: cfg.monitor.tolerance,
        psi_alert: cfg.monitor.psi_alert,
        ..Default::default()
    };
    let decision = assess(&set, &champion.version, &labels, baseline, reference_mix, &t);
    let retrain = decision.decision == "retrain";
    report.reason = decision.reason.clone();
    report.monitor = Some(decision);
    if !retrain && !opts.force_retrain {
        report.outcome = Outcome::Hold;
        return Ok(());
    }
    // After a rollback, a challenger trained on the same feedback would learn what the rolled
    // back version learned: wait for feedback that arrived since.
    if let Some((version, at)) = registry.rolled_back().max_by_key(|(_, at)| parse_timestamp_millis(at)) {
        let since = parse_timestamp_millis(at);
        if !set.records.iter().any(|r| parse_timestamp_millis(&r.received_at) > since) {
            report.outcome = Outcome::Hold;
            report.reason = format!(
                "{version} was rolled back at {at} and no feedback has arrived since; a challenger trained now would learn from the same feedback, so the run waits for new feedback"
            );
            return Ok(());
        }
    }

    // 4. Training, validation and holdout sets from all feedback (every version's corrections
    //    count).
    enter_stage(&mut stage, "split");
    let gold = load_examples(&cfg.gold_test, &labels)?;
    if gold.is_empty() {
        return Err(format!("{}: the gold test set is empty", cfg.gold_test.display()).into());
    }
    let guard = match &cfg.guard_set {
        Some(p) => load_examples(p, &labels)?,
        None => Vec::new(),
    };
    if guard.is_empty() {
        return Err("the guard set is empty or not configured (guard_set): the night's choices are made on it".into());
    }
    let protected: HashSet<String> = gold.iter().chain(&guard).map(|e| feedback_data::normalise(&e.text)).collect();
    let data = feedback_data::build(&set.records, &labels, &cfg.split, &cfg.clients, &protected);
    let enough = data.holdout.len() >= cfg.gate.min_holdout && !data.train.is_empty();
    let (train_n, holdout_n) = (data.train.len(), data.holdout.len());
    let data = report.data.insert(data);
    if !enough {
        report.outcome = Outcome::Rejected;
        report.reason = format!(
            "not enough feedback to train and judge a challenger: {train_n} training and {holdout_n} holdout texts (at least 1 and {} needed)",
            cfg.gate.min_holdout
        );
        return Ok(());
    }
    enter_stage(&mut stage, "fetch");
    prune_runs(&cfg.work_dir, cfg.keep_runs - 1);
    tracing::info!("fetching champion {} from {}", champion.version, store.location());
    let fetched = fetch_version(&*store, &champion, &run_dir.join("champion"))?;
    let train_path = run_dir.join("feedback-train.jsonl");
    let train_jsonl = feedback_data::to_jsonl(&data.train);
    write_durably(&train_path, train_jsonl.as_bytes())?;
    write_durably(&run_dir.join("feedback-validation.jsonl"), feedback_data::to_jsonl(&data.validation).as_bytes())?;
    write_durably(&run_dir.join("feedback-holdout.jsonl"), feedback_data::to_jsonl(&data.holdout).as_bytes())?;

    // 5. Fine-tune from the champion's float checkpoint when it has one, keeping every epoch.
    enter_stage(&mut stage, "train");
    let base = fetched.checkpoint.clone().unwrap_or_else(|| fetched.bundle.clone());
    let tc = &cfg.train;
    let mut to = TrainOptions::new(base.clone(), vec![train_path], run_dir.join("fine-tune"));
    to.replay = cfg.replay_data.clone();
    to.replay_ratio = tc.replay_ratio;
    to.epochs = tc.epochs;
    to.lr = tc.lr;
    to.batch_size = tc.batch_size;
    to.max_len = tc.max_len;
    to.warmup = tc.warmup;
    to.weight_decay = tc.weight_decay;
    to.max_grad_norm = tc.max_grad_norm;
    to.l2sp = tc.l2sp;
    to.keep_epoch_checkpoints = true;
    to.seed = tc.seed;
    to.checkpoint_every = tc.checkpoint_every;
    to.preprocess = manifest.preprocessing;
    let summary = crate::train::train(&to, on_step)?;
    let replayed = summary.replay_examples;
    report.training = Some(summary);

    // 6. Choose the challenger among the epochs and their blends with the champion, on the guard
    //    set and the feedback validation split; then quantize it as the champion is quantized:
    //    the gate judges exactly what would ship.
    enter_stage(&mut stage, "select");
    let validation = label_examples(&data.validation, &labels);
    let champion_float = load_base(&base, None, manifest.preprocessing)?;
    let epochs = to.epoch_checkpoints();
    let source = CandidateSource {
        config: &champion_float.config,
        encoder: &champion_float.encoder,
        champion: &champion_float.tensors,
        epochs: &epochs,
    };
    let (selection, chosen) = select::evaluate_and_choose(&source, &guard, &validation, &cfg.select, |what| {
        tracing::info!("scoring {what} on the guard set and the feedback validation split")
    })?;
    let challenger_checkpoint = run_dir.join("challenger-checkpoint");
    write_hf_checkpoint(
        &challenger_checkpoint,
        &champion_float.config,
        &chosen.into_iter().collect(),
        &champion_float.encoder,
    )?;
    drop(champion_float);
    let picked = selection.chosen().clone();
    report.selection = Some(selection);
    let ck = Checkpoint::load(
        &challenger_checkpoint,
        &LoadOptions { preprocess: manifest.preprocessing, ..Default::default() },
    )?;
    let lineage = json!({
        "base_version": champion.version,
        "feedback": {
            "source": cfg.feedback, "records": data.records, "unique_texts": data.unique_texts,
            "train_examples": data.train.len(), "validation_examples": data.validation.len(),
            "holdout_examples": data.holdout.len(),
            "train_sha256": shared::sha256_hex(train_jsonl.as_bytes()),
        },
        "replay": { "data": cfg.replay_data.as_ref().map(|p| p.display().to_string()), "examples": replayed },
        "gold_test": cfg.gold_test.display().to_string(),
        "guard_set": cfg.guard_set.as_ref().map(|p| p.display().to_string()),
        "train": cfg.train,
        "selection": { "epoch": picked.epoch, "mixing_weight": picked.mixing_weight, "select": cfg.select },
    });
    enter_stage(&mut stage, "quantize");
    // Calibrated on what it was trained on (never the gold set or the holdout it is judged on).
    let mut calibration_texts: Vec<String> = data.train.iter().map(|t| t.text.clone()).collect();
    if let Some(replay) = &cfg.replay_data {
        calibration_texts.extend(load_examples(replay, &labels)?.into_iter().map(|e| e.text));
    }
    let calibration = CalibrationTexts::sample(calibration_texts, CALIBRATION_TEXTS, "challenger training data".into());
    // The challenger's weights come from the champion in the model store: a published bundle
    // names that repo (and its parent version), never a machine's directory.
    let source = match Location::parse(&cfg.registry) {
        Location::Hub(id) => shared::bundle::Source { repo_id: id.to_string(), revision: None },
        Location::Local(_) => shared::bundle::Source {
            repo_id: public_source(&manifest.source.repo_id),
            revision: manifest.source.revision.clone(),
        },
    };
    let info = BundleInfo {
        source,
        quantization: manifest.quantization,
        version: None,
        parent_version: Some(champion.version.clone()),
        created_at: shared::Clock::system().now_rfc3339(),
        metrics: BTreeMap::new(),
        lineage: Some(lineage),
        calibration: Some(calibration),
    };
    let challenger_dir = run_dir.join("challenger");
    let mut challenger = write_bundle(&ck, info, &challenger_dir, |_, _, _| {})?;
    drop(ck);
    report.challenger = Some(challenger.version.clone());
    let same_model = registry.rolled_back().find(|(v, _)| {
        registry.get(v).is_some_and(|e| e.model_sha256 == challenger.files[shared::bundle::MODEL_FILE].sha256)
    });
    if let Some((version, at)) = same_model {
        report.outcome = Outcome::Rejected;
        report.reason = format!("the challenger is the very model of {version}, rolled back at {at}");
        return Ok(());
    }

    // 7. Evaluate both on the gold set and the feedback holdout.
    enter_stage(&mut stage, "gate");
    let holdout = label_examples(&data.holdout, &labels);
    let truth: Vec<usize> = holdout.iter().map(|e| e.label).collect();
    let score = |dir: &Path| -> Result<_, RunError> {
        let p = Predictor::open_bundle(dir)?;
        let on_holdout = p.predicted_labels(&holdout, 32, |_| {})?;
        let holdout_report = crate::eval::EvalReport::new(&labels, &truth, &on_holdout);
        Ok((p.evaluate(&gold, 32, |_| {})?, holdout_report, on_holdout))
    };
    let (champion_gold, champion_holdout, champion_predicted) = score(&fetched.bundle)?;
    let (challenger_gold, challenger_holdout, challenger_predicted) = score(&challenger_dir)?;
    let holdout_pairs = gate::Discordant::count(&truth, &champion_predicted, &challenger_predicted);
    let evals = Evaluations { champion_gold, challenger_gold, champion_holdout, challenger_holdout, holdout_pairs };
    let verdict = gate::judge(&evals, &cfg.gate);
    report.reason = verdict.reason.clone();
    let promote = verdict.promote;
    report.gate = Some(verdict);

    if !promote {
        report.evaluations = Some(evals);
        report.outcome = Outcome::Rejected;
        return Ok(());
    }

    // 8. Promote: the figures go into the manifest, the bundle and its checkpoint to the store.
    enter_stage(&mut stage, "publish");
    let all: Vec<&LabelledText> = data.train.iter().chain(&data.holdout).collect();
    let figures = |r: &crate::eval::EvalReport| json!({"n": r.n, "accuracy": r.accuracy, "macro_recall": r.macro_recall, "macro_f1": r.macro_f1});
    challenger.metrics.insert("gold".into(), figures(&evals.challenger_gold));
    challenger.metrics.insert("feedback_holdout".into(), figures(&evals.challenger_holdout));
    if cfg.guard_set.is_some() {
        challenger.metrics.insert("guard".into(), json!(picked.guard));
    }
    // What the monitor expects this model to score on future feedback: its holdout agreement.
    challenger.metrics.insert("agreement_baseline".into(), json!(evals.challenger_holdout.accuracy));
    challenger.metrics.insert("label_mix".into(), json!(mix(&all, &labels)));
    write_durably(&challenger_dir.join(MANIFEST_FILE), challenger.to_json().as_bytes())?;
    let reason = report.reason.clone();
    let at = shared::Clock::system().now_rfc3339();
    // Only over the champion it was judged against: a rollback meanwhile wins, and this run
    // says so instead of undoing it.
    let opts = PublishOptions {
        checkpoint: Some(&challenger_checkpoint),
        kind: ChangeKind::Promoted,
        expect: Expect::Champion(champion.version.clone()),
        ..PublishOptions::new(reason, at)
    };
    publish(&*store, &challenger_dir, &opts)?;
    report.evaluations = Some(evals);
    report.new_champion = Some(challenger.version.clone());
    report.outcome = Outcome::Promoted;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_runs_keeps_the_newest_run_folders_and_nothing_else_is_touched() {
        let dir = std::env::temp_dir().join(format!("st-prune-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let stamps = ["20261127020000001", "20261128020000001", "20261129020000001", "20261126020000001"];
        for s in stamps {
            std::fs::create_dir_all(dir.join(format!("run-{s}/champion"))).unwrap();
            std::fs::write(dir.join(format!("run-{s}/champion/model.gguf")), b"weights").unwrap();
        }
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        std::fs::write(dir.join("run-log.txt"), b"not a run folder").unwrap();

        prune_runs(&dir, 2);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["notes", "run-20261128020000001", "run-20261129020000001", "run-log.txt"]);

        prune_runs(&dir, 0);
        assert!(!dir.join("run-20261129020000001").exists());
        assert!(dir.join("notes").exists() && dir.join("run-log.txt").exists());
        // A work_dir that does not exist yet (the first run) is no error.
        prune_runs(&dir.join("missing"), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
