//! The nightly run's configuration file (TOML). Relative paths are relative to the file.

use crate::train::TrainOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// Which figure of an evaluation the gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    MacroRecall,
    MacroF1,
}

impl Metric {
    pub fn of(self, r: &crate::eval::EvalReport) -> f64 {
        match self {
            Metric::Accuracy => r.accuracy,
            Metric::MacroRecall => r.macro_recall,
            Metric::MacroF1 => r.macro_f1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroRecall => "macro recall",
            Metric::MacroF1 => "macro F1",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightlyConfig {
    /// The model store: a local directory or a Hub model repo id (`owner/name`).
    pub registry: String,
    /// The feedback: a local directory of JSONL shards or a Hub dataset id.
    pub feedback: String,
    /// The fixed gold test set (TweetEval pair, JSONL or CSV); never trained on.
    pub gold_test: PathBuf,
    /// Base-domain data that is not the gold set (e.g. TweetEval validation): the night's
    /// choices (mixing weight, epoch) must not lose more than `select.max_guard_loss` on it.
    pub guard_set: Option<PathBuf>,
    /// The base model's training data, replayed so the model does not forget.
    pub replay_data: Option<PathBuf>,
    /// Scratch space: fetched champion, training output, candidate bundle.
    #[serde(default = "default_work_dir")]
    pub work_dir: PathBuf,
    /// How many runs' folders (`run-<time>`) `work_dir` keeps, the current run's included.
    /// Each holds the fetched champion, the challenger's checkpoint and its bundle; older ones
    /// are deleted when a run starts retraining.
    #[serde(default = "default_keep_runs")]
    pub keep_runs: usize,
    /// Where each run's `nightly-<time>.md` and `.json` go.
    #[serde(default = "default_report_dir")]
    pub report_dir: PathBuf,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub split: SplitConfig,
    #[serde(default)]
    pub clients: ClientsConfig,
    #[serde(default)]
    pub gate: GateConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub select: SelectConfig,
    #[serde(default)]
    pub promotion_guard: PromotionGuardConfig,
}

/// Watching a promoted champion against its parent (`nightly::promotion_guard`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromotionGuardConfig {
    /// Fewest feedback records since the promotion before the guard judges.
    pub min_samples: u64,
}

impl Default for PromotionGuardConfig {
    fn default() -> Self {
        PromotionGuardConfig { min_samples: 200 }
    }
}

fn default_work_dir() -> PathBuf {
    "nightly-work".into()
}
fn default_keep_runs() -> usize {
    3
}
fn default_report_dir() -> PathBuf {
    "nightly-reports".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    pub min_samples: u64,
    pub tolerance: f64,
    /// Used when the champion's manifest records no `agreement_baseline`.
    pub baseline: Option<f64>,
    /// PSI of the feedback's label mix against the champion's training mix above which the
    /// report raises a drift alert; with the agreement interval below baseline, it is a reason
    /// to retrain. 0 turns the alert off.
    pub psi_alert: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        let t = crate::monitor::Thresholds::default();
        MonitorConfig { min_samples: t.min_samples, tolerance: t.tolerance, baseline: None, psi_alert: t.psi_alert }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitConfig {
    /// Share of the feedback's clients (by a hash of the client key; a record without one is
    /// its own client) kept out of training to judge it.
    pub holdout_fraction: f64,
    /// Share of the feedback kept out of training (and out of the holdout) to choose among
    /// candidates on.
    pub validation_fraction: f64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig { holdout_fraction: 0.2, validation_fraction: 0.15 }
    }
}

/// How much one client may weigh (`nightly::feedback_data`): votes count once per client and
/// text, and one client's votes beyond `max(cap_min, cap_share x all clients' votes)` are
/// dropped (and counted), so a client with fresh ids cannot outvote the others or fill the
/// training data with its labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    pub cap_share: f64,
    pub cap_min: usize,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig { cap_share: 0.05, cap_min: 20 }
    }
}

impl ClientsConfig {
    /// Most votes one client keeps out of `votes` (every client's, one per client and text).
    pub fn cap(&self, votes: usize) -> usize {
        self.cap_min.max((self.cap_share * votes as f64).ceil() as usize)
    }
}

/// How the challenger is chosen among the fine-tune's candidates (`nightly::select`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectConfig {
    /// WiSE-FT weights of the fine-tune tried against the champion (1, the plain fine-tune, is
    /// always tried), for each epoch's checkpoint.
    pub mixing_weights: Vec<f64>,
    /// A candidate may lose at most this much on the guard set against the champion.
    pub max_guard_loss: f64,
    pub guard_metric: Metric,
    pub validation_metric: Metric,
}

impl Default for SelectConfig {
    fn default() -> Self {
        SelectConfig {
            mixing_weights: vec![0.25, 0.5, 0.75, 1.0],
            max_guard_loss: 0.0025,
            guard_metric: Metric::MacroRecall,
            validation_metric: Metric::Accuracy,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// The challenger must beat the champion on the feedback holdout by at least this.
    pub min_holdout_gain: f64,
    /// ... and may lose at most this on the gold test set.
    pub max_gold_loss: f64,
    pub holdout_metric: Metric,
    pub gold_metric: Metric,
    /// Fewest holdout texts to judge a challenger at all: below 292, a 2 pp gain with the loss
    /// rate seen on real drift (1.15 % of texts only the champion gets right) is not
    /// significant (docs/loop.md, "How many holdout texts").
    pub min_holdout: usize,
    /// The holdout gain must be at least this many standard errors from none (McNemar's z;
    /// 1.645 is one-sided 95 %). 0 turns the test off.
    pub min_holdout_z: f64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            min_holdout_gain: 0.02,
            max_gold_loss: 0.005,
            holdout_metric: Metric::Accuracy,
            gold_metric: Metric::MacroRecall,
            min_holdout: 300,
            min_holdout_z: 1.645,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub max_len: usize,
    pub warmup: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub seed: u64,
    /// Replay examples per feedback example.
    pub replay_ratio: f64,
    /// L2-SP strength pulling the weights toward the champion's (0: off).
    pub l2sp: f64,
    /// Saves the training state every N steps, so a killed run can be resumed.
    pub checkpoint_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        let t = TrainOptions::new(PathBuf::new(), Vec::new(), PathBuf::new());
        TrainConfig {
            epochs: 2,
            lr: 3e-5,
            batch_size: t.batch_size,
            max_len: t.max_len,
            warmup: t.warmup,
            weight_decay: t.weight_decay,
            max_grad_norm: t.max_grad_norm,
            seed: t.seed,
            replay_ratio: 1.0,
            l2sp: 0.0,
            checkpoint_every: 200,
        }
    }
}

impl NightlyConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        let invalid = |detail: String| ConfigError::Invalid { path: path.to_path_buf(), detail };
        let mut c: NightlyConfig = toml::from_str(&text).map_err(|e| invalid(e.to_string().replace('\n', " ")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rel(&mut c.gold_test);
        rel(&mut c.work_dir);
        rel(&mut c.report_dir);
        for p in [c.replay_data.as_mut(), c.guard_set.as_mut()].into_iter().flatten() {
            rel(p);
        }
        // A relative local registry or feedback dir is relative to the file too; Hub ids stay.
        for loc in [&mut c.registry, &mut c.feedback] {
            if !crate::location::Location::parse(loc).is_hub() && Path::new(loc.as_str()).is_relative() {
                *loc = base.join(&*loc).display().to_string();
            }
        }
        if c.guard_set.is_none() {
            // Without it every blend looks as good on the base domain as the champion, and the
            // night would choose blind (docs/retraining.md).
            return Err(invalid(
                "guard_set is missing: base-domain labelled data that is not the gold set (e.g. TweetEval validation, ../data/tweeteval/val_text.txt from scripts/fetch-tweeteval.sh); the night's choices are made on it".into(),
            ));
        }
        let (h, v) = (c.split.holdout_fraction, c.split.validation_fraction);
        if !(h > 0.0 && v > 0.0 && h + v < 1.0) {
            return Err(invalid(format!(
                "split.holdout_fraction and split.validation_fraction must each be above 0 and together below 1; got {h} and {v}"
            )));
        }
        if let Some(w) = c.select.mixing_weights.iter().find(|w| !(**w > 0.0 && **w <= 1.0)) {
            return Err(invalid(format!("select.mixing_weights must be in (0, 1], got {w}")));
        }
        if c.select.max_guard_loss < 0.0 || c.train.l2sp < 0.0 {
            return Err(invalid("select.max_guard_loss and train.l2sp must not be negative".into()));
        }
        if c.keep_runs == 0 {
            return Err(invalid("keep_runs must be at least 1 (the current run's folder)".into()));
        }
        if !(c.clients.cap_share > 0.0 && c.clients.cap_share <= 1.0) || c.clients.cap_min == 0 {
            return Err(invalid(format!(
                "clients.cap_share must be in (0, 1] and clients.cap_min at least 1; got {} and {}",
                c.clients.cap_share, c.clients.cap_min
            )));
        }
        if c.gate.max_gold_loss < 0.0 {
            return Err(invalid("gate.max_gold_loss must not be negative".into()));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<NightlyConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("st-nightly-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.toml", extra.len()));
        std::fs::write(
            &path,
            format!("registry = \"r\"\nfeedback = \"f\"\ngold_test = \"g.txt\"\nguard_set = \"val_text.txt\"\n{extra}"),
        )
        .unwrap();
        let c = NightlyConfig::from_file(&path);
        std::fs::remove_file(&path).unwrap();
        c
    }

    #[test]
    fn the_client_cap_is_checked_and_the_production_config_keeps_the_defaults() {
        let err = parse("[clients]\ncap_share = 0").unwrap_err().to_string();
        assert!(err.contains("clients.cap_share"), "{err}");
        assert_eq!(ClientsConfig::default().cap(100), 20);
        assert_eq!(ClientsConfig::default().cap(1001), 51);
        let prod = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.github/nightly.toml");
        let c = NightlyConfig::from_file(&prod).unwrap();
        let d = ClientsConfig::default();
        assert_eq!((c.clients.cap_share, c.clients.cap_min), (d.cap_share, d.cap_min));
        assert_eq!(c.gate.min_holdout, GateConfig::default().min_holdout);
    }

    #[test]
    fn the_split_and_the_selection_are_checked() {
        let c = parse("").unwrap();
        assert!(c.guard_set.unwrap().ends_with("val_text.txt") && c.split.validation_fraction > 0.0);
        let err = parse("[split]\nholdout_fraction = 0.5\nvalidation_fraction = 0.5").unwrap_err().to_string();
        assert!(err.contains("together below 1"), "{err}");
        let err = parse("[select]\nmixing_weights = [0.0, 0.5]").unwrap_err().to_string();
        assert!(err.contains("mixing_weights must be in (0, 1]"), "{err}");
        assert!(parse("[train]\nl2sp = -1").is_err());
        let err = parse("[split]\nvalidation_fraction = 0").unwrap_err().to_string();
        assert!(err.contains("each be above 0"), "{err}");
        let path = std::env::temp_dir().join(format!("st-nightly-no-guard-{}.toml", std::process::id()));
        std::fs::write(&path, "registry = \"r\"\nfeedback = \"f\"\ngold_test = \"g.txt\"\n").unwrap();
        let err = NightlyConfig::from_file(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("guard_set is missing"), "{err}");
    }

    #[test]
    fn keep_runs_defaults_to_three_and_must_keep_the_current_run() {
        assert_eq!(parse("").unwrap().keep_runs, 3);
        assert_eq!(parse("keep_runs = 1").unwrap().keep_runs, 1);
        let err = parse("keep_runs = 0").unwrap_err().to_string();
        assert!(err.contains("keep_runs must be at least 1"), "{err}");
    }
}
