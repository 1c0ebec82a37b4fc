//! `sentiment-trainer monitor`: is the champion getting things wrong in the field?
//!
//! Reads the feedback JSONL shards (a local data dir / segments dir, or the Hub logs dataset),
//! dedups by id, keeps the champion version's records and measures **agreement on submitted
//! feedback**: the share of records whose label equals the model's prediction. Feedback is not
//! a random sample (people mostly report mistakes), so this is not accuracy on the traffic; it
//! is compared with the same figure's baseline. Retrain only when there are enough records
//! **and** the Wilson 95 % interval's upper bound is below `baseline - tolerance`.

use crate::location::Location;
use hub::{HubClient, Repo, RepoId};
use serde::Serialize;
use shared::feedback::{psi, wilson_interval};
pub use shared::model_store::MonitorDecision;
use shared::model_store::{DEFAULT_MIN_SAMPLES, DEFAULT_PSI_ALERT, DEFAULT_TOLERANCE};
use shared::FeedbackRecord;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("reading the Hub dataset {repo}: {detail}")]
    Hub { repo: String, detail: String },
    #[error("no baseline: pass --baseline or record metrics.agreement_baseline in the bundle manifest")]
    NoBaseline,
}

/// The decision rule's knobs. Defaults: 200 records, 2 pp tolerance, 95 % (z = 1.96), a drift
/// alert from PSI 0.25 (the usual "significant shift" level).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    pub min_samples: u64,
    pub tolerance: f64,
    pub z: f64,
    /// PSI of the label mix above which drift is reported (0: never).
    pub psi_alert: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_samples: DEFAULT_MIN_SAMPLES,
            tolerance: DEFAULT_TOLERANCE,
            z: 1.96,
            psi_alert: DEFAULT_PSI_ALERT,
        }
    }
}

/// Feedback as read: deduplicated records and what was dropped on the way.
#[derive(Debug, Default)]
pub struct FeedbackSet {
    pub records: Vec<FeedbackRecord>,
    pub files: usize,
    pub duplicates: u64,
    /// Lines that are not records (a torn last write, a foreign line); skipped, counted.
    pub unreadable_lines: u64,
}

/// Parses JSONL shards in order; the first record of each id wins (the server's idempotency
/// rule: a retried submission is the same record).
pub fn parse_shards<'a>(shards: impl IntoIterator<Item = &'a [u8]>) -> FeedbackSet {
    let mut set = FeedbackSet::default();
    let mut seen = HashSet::new();
    for bytes in shards {
        set.files += 1;
        for line in bytes.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<FeedbackRecord>(line) {
                Ok(r) => {
                    if seen.insert(r.submission.id.to_ascii_lowercase()) {
                        set.records.push(r);
                    } else {
                        set.duplicates += 1;
                    }
                }
                Err(_) => set.unreadable_lines += 1,
            }
        }
    }
    set
}

/// Every `*.jsonl` under `dir` (recursively: a server data dir has them in `segments/`, a
/// downloaded dataset in `data/<instance>/`), in path order.
pub fn read_local(dir: &Path) -> Result<FeedbackSet, MonitorError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| MonitorError::Io { path: d.clone(), source })?;
        for e in rd {
            let p = e.map_err(|source| MonitorError::Io { path: d.clone(), source })?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut contents = Vec::with_capacity(files.len());
    for f in &files {
        contents.push(std::fs::read(f).map_err(|source| MonitorError::Io { path: f.clone(), source })?);
    }
    Ok(parse_shards(contents.iter().map(Vec::as_slice)))
}

/// Every `*.jsonl` in the Hub logs dataset `repo_id`, all read at one commit: a compaction
/// committed meanwhile (which deletes the shards it merged) changes nothing for this reader.
pub fn read_hub(client: &HubClient, repo_id: &RepoId) -> Result<FeedbackSet, MonitorError> {
    let err = |e: hub::HubError| MonitorError::Hub { repo: repo_id.to_string(), detail: e.to_string() };
    let head = client.repo_info(&Repo::dataset(repo_id.clone())).map_err(err)?.sha;
    let repo = Repo::dataset(repo_id.clone()).at_revision(head);
    let mut paths: Vec<String> = client
        .list_tree(&repo, "", true)
        .map_err(err)?
        .into_iter()
        .filter(|e| e.kind == "file" && e.path.ends_with(".jsonl"))
        .map(|e| e.path)
        .collect();
    paths.sort();
    let mut contents = Vec::with_capacity(paths.len());
    for p in &paths {
        contents.push(client.download(&repo, p).map_err(err)?);
    }
    Ok(parse_shards(contents.iter().map(Vec::as_slice)))
}

/// Feedback from a local directory, or else from the Hub dataset `owner/name` (with
/// [`HubClient::from_env`]).
pub fn read_feedback(location: &str) -> Result<FeedbackSet, MonitorError> {
    match Location::parse(location) {
        Location::Hub(id) => {
            let client =
                HubClient::from_env().map_err(|e| MonitorError::Hub { repo: id.to_string(), detail: e.to_string() })?;
            read_hub(&client, &id)
        }
        Location::Local(dir) => read_local(&dir),
    }
}

/// The rule: retrain iff `n ≥ min_samples` and `ci_high < baseline − tolerance`.
pub fn decide(successes: u64, n: u64, baseline: f64, t: &Thresholds) -> (bool, String, Option<[f64; 2]>) {
    let ci = wilson_interval(successes, n, t.z);
    let bar = baseline - t.tolerance;
    if n < t.min_samples {
        return (
            false,
            format!("only {n} feedback records for this version; at least {} are needed", t.min_samples),
            ci,
        );
    }
    let [lo, hi] = ci.expect("n > 0 here");
    let acc = successes as f64 / n as f64;
    if hi < bar {
        (
            true,
            format!(
                "agreement on submitted feedback {acc:.3} (95 % CI {lo:.3}-{hi:.3}) is below baseline {baseline:.3} minus tolerance {:.3}",
                t.tolerance
            ),
            ci,
        )
    } else {
        (
            false,
            format!(
                "agreement on submitted feedback {acc:.3} (95 % CI {lo:.3}-{hi:.3}): upper bound not below {bar:.3} (baseline {baseline:.3} minus tolerance {:.3})",
                t.tolerance
            ),
            ci,
        )
    }
}

/// Measures the champion (`model_version`) on `set` and decides.
pub fn assess(
    set: &FeedbackSet,
    model_version: &str,
    labels: &[String],
    baseline: f64,
    reference_mix: Option<BTreeMap<String, f64>>,
    t: &Thresholds,
) -> MonitorDecision {
    let mine: Vec<&FeedbackRecord> =
        set.records.iter().filter(|r| r.submission.model_version == model_version).collect();
    let n = mine.len() as u64;
    let agree = mine.iter().filter(|r| r.submission.label == r.submission.predicted).count() as u64;
    let mut label_mix: BTreeMap<String, f64> = labels.iter().map(|l| (l.clone(), 0.0)).collect();
    for r in &mine {
        *label_mix.entry(r.submission.label.clone()).or_default() += 1.0 / n as f64;
    }
    let (mut retrain, mut reason, ci) = decide(agree, n, baseline, t);
    let psi = match (&reference_mix, n > 0) {
        (Some(q), true) => Some(psi(&label_mix, q)),
        _ => None,
    };
    let psi_alert = t.psi_alert > 0.0 && psi.is_some_and(|p| p > t.psi_alert);
    if psi_alert && !retrain && n >= t.min_samples {
        let psi = psi.expect("alert implies psi");
        let [lo, hi] = ci.expect("n > 0 here");
        if hi < baseline {
            retrain = true;
            reason = format!(
                "the label mix has drifted (PSI {psi:.3} above {:.3}) and agreement on submitted feedback {:.3} (95 % CI {lo:.3}-{hi:.3}) is below baseline {baseline:.3}",
                t.psi_alert,
                agree as f64 / n as f64
            );
        } else {
            reason = format!("{reason}; the label mix has drifted (PSI {psi:.3} above {:.3})", t.psi_alert);
        }
    }
    MonitorDecision {
        n,
        accuracy: (n > 0).then(|| agree as f64 / n as f64),
        ci_low: ci.map(|c| c[0]),
        ci_high: ci.map(|c| c[1]),
        baseline,
        decision: if retrain { "retrain" } else { "hold" }.to_string(),
        reason,
        metric: "agreement on submitted feedback".into(),
        model_version: model_version.to_string(),
        min_samples: t.min_samples,
        tolerance: t.tolerance,
        label_mix,
        reference_mix,
        psi,
        psi_alert,
        psi_threshold: t.psi_alert,
        records_total: set.records.len() as u64,
        records_other_versions: set.records.len() as u64 - n,
        duplicates: set.duplicates,
        unreadable_lines: set.unreadable_lines,
    }
}

/// Baseline and reference label mix recorded in a bundle's manifest metrics
/// (`agreement_baseline`, `label_mix`), if any.
pub fn manifest_reference(
    metrics: &BTreeMap<String, serde_json::Value>,
) -> (Option<f64>, Option<BTreeMap<String, f64>>) {
    let baseline = metrics.get("agreement_baseline").and_then(|v| v.as_f64());
    let mix = metrics.get("label_mix").and_then(|v| serde_json::from_value(v.clone()).ok());
    (baseline, mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, label: &str, predicted: &str, version: &str) -> String {
        serde_json::json!({
            "id": id, "text": "t", "predicted": predicted,
            "scores": {"negative": 0.2, "neutral": 0.3, "positive": 0.5},
            "label": label, "model_version": version, "received_at": "2026-11-23T10:00:00.000Z"
        })
        .to_string()
    }

    fn labels() -> Vec<String> {
        ["negative", "neutral", "positive"].map(String::from).to_vec()
    }

    #[test]
    fn retrains_only_with_enough_records_and_a_clearly_lower_upper_bound() {
        let t = Thresholds { min_samples: 100, tolerance: 0.02, ..Default::default() };
        // 60 % agreement on 99 records: clearly bad, but too few.
        assert!(!decide(59, 99, 0.8, &t).0);
        // 60 % on 200: Wilson upper bound 0.664 < 0.78 → retrain.
        let (r, _, ci) = decide(120, 200, 0.8, &t);
        let [lo, hi] = ci.unwrap();
        assert!(r);
        assert!((lo - 0.5308).abs() < 1e-3 && (hi - 0.6654).abs() < 1e-3, "{lo} {hi}");
        // 75 % on 200: upper bound 0.805 ≥ 0.78 → hold (not clearly worse).
        let (r, reason, ci) = decide(150, 200, 0.8, &t);
        assert!(!r, "{reason}");
        assert!(ci.unwrap()[1] > 0.78);
        // 74 % on 2000: upper bound 0.759 < 0.78 → retrain: more data, tighter interval.
        assert!(decide(1480, 2000, 0.8, &t).0);
        // Around the bar: just above it holds, just below it retrains.
        let hi = wilson_interval(150, 200, 1.96).unwrap()[1];
        assert!(!decide(150, 200, hi + 0.0199, &t).0);
        assert!(decide(150, 200, hi + 0.0201, &t).0);
    }

    /// A drifted label mix is reported, and with agreement below baseline (but not below it by
    /// the tolerance) it is what makes the monitor say retrain.
    #[test]
    fn a_label_mix_drift_alerts_and_retrains_only_below_baseline() {
        let records = |agree: usize| -> String {
            (0..300)
                .map(|i| {
                    let label = if i % 10 < 8 { "negative" } else { "positive" };
                    let predicted = if i < agree { label } else { "neutral" };
                    rec(&format!("00000000-0000-4000-8000-{i:012}"), label, predicted, "v1")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let even = BTreeMap::from([("negative".into(), 0.34), ("neutral".into(), 0.33), ("positive".into(), 0.33)]);
        let t = Thresholds::default();
        // 75 % on 300 (69.8–79.6 %) against a baseline of 0.8: not below it by the tolerance, so
        // without a reference mix the monitor holds.
        let below = parse_shards([records(225).as_bytes()]);
        let d = assess(&below, "v1", &labels(), 0.8, None, &t);
        assert_eq!((d.decision.as_str(), d.psi_alert), ("hold", false));
        let d = assess(&below, "v1", &labels(), 0.8, Some(even.clone()), &t);
        assert!(d.psi.unwrap() > 0.25 && d.psi_alert);
        assert_eq!(d.decision, "retrain", "{}", d.reason);
        assert!(d.reason.contains("label mix has drifted"), "{}", d.reason);
        // 90 % agreement: the drift is reported, the model still does its job: hold.
        let d = assess(&parse_shards([records(270).as_bytes()]), "v1", &labels(), 0.8, Some(even), &t);
        assert_eq!((d.decision.as_str(), d.psi_alert), ("hold", true));
        assert!(d.reason.contains("PSI"), "{}", d.reason);
    }

    #[test]
    fn dedups_by_id_keeps_the_champion_and_counts_the_rest() {
        let a = [
            rec("00000000-0000-4000-8000-000000000001", "positive", "positive", "v1"),
            rec("00000000-0000-4000-8000-000000000002", "negative", "positive", "v1"),
            "{\"torn".to_string(),
        ]
        .join("\n");
        let b = [
            rec("00000000-0000-4000-8000-000000000001", "negative", "positive", "v1"), // duplicate id
            rec("00000000-0000-4000-8000-000000000003", "neutral", "neutral", "v0"),
        ]
        .join("\n");
        let set = parse_shards([a.as_bytes(), b.as_bytes()]);
        assert_eq!((set.records.len(), set.duplicates, set.unreadable_lines), (3, 1, 1));
        let mix = BTreeMap::from([("negative".into(), 0.5), ("neutral".into(), 0.0), ("positive".into(), 0.5)]);
        let d = assess(&set, "v1", &labels(), 0.9, Some(mix), &Thresholds { min_samples: 2, ..Default::default() });
        assert_eq!(d.n, 2);
        assert_eq!(d.accuracy, Some(0.5)); // the first record of id 1 wins
        assert_eq!(d.records_other_versions, 1);
        assert!(d.psi.unwrap().abs() < 1e-9);
        let json = serde_json::to_value(&d).unwrap();
        for k in ["n", "accuracy", "ci_low", "ci_high", "baseline", "decision", "reason"] {
            assert!(json.get(k).is_some(), "{k}");
        }
    }
}
