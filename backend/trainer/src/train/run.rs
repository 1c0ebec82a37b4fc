//! `sentiment-trainer train`: data in, fine-tuned HF-layout checkpoint out, resumable.
//!
//! Files in `out`: `config.json`, `model.safetensors`, `tokenizer.json` (after every epoch and
//! at the end), `train-state.safetensors` (every epoch and every `checkpoint_every` steps),
//! `metrics.jsonl` (one line per step, one per evaluation), `metrics.png`, `summary.json`.

use super::batches::{batches_per_epoch, epoch_batches, shuffle};
use super::state::{read_state, restore, save_state, write_hf_checkpoint, TrainState};
use super::step::Trainable;
use super::{derive_seed, TrainError};
use crate::checkpoint::{read_file, Checkpoint, LoadOptions};
use crate::data::{load_examples, Example};
use crate::eval::EvalReport;
use candle_core::{Device, Tensor};
use model::gguf::GgufWeights;
use model::tokenize::{PaddedBatch, TextEncoder};
use model::weights::{expected_shapes, SplitMix64};
use model::BundleModel;
use model::{argmax, WeightSource};
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::bundle::{Manifest, MANIFEST_FILE, MODEL_FILE};
use shared::config::ModelConfig;
use shared::Preprocess;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const METRICS_FILE: &str = "metrics.jsonl";
pub const PLOT_FILE: &str = "metrics.png";
pub const SUMMARY_FILE: &str = "summary.json";

/// Everything `train` takes: also the options of `sentiment-trainer train` (their defaults
/// there are clap's; `TrainOptions::new` has the library's). Defaults follow the reference
/// fine-tune (lr 5e-5, batch 32, 64 tokens, 6 % warm-up, weight decay 0.01, clip 1.0).
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct TrainOptions {
    /// A bundle directory (quantized weights are dequantized) or an HF checkpoint directory to
    /// start from.
    #[arg(long)]
    pub base: PathBuf,
    /// Training data (X_text.txt, .jsonl or .csv); repeat for several.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    /// Earlier training data to mix in so the model does not forget.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Replay examples drawn per new example (a seeded sample without replacement).
    #[arg(long, default_value_t = 1.0)]
    pub replay_ratio: f64,
    /// Validation data, scored after every epoch.
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 64)]
    pub max_len: usize,
    /// Linear warm-up as a fraction of all steps, then linear decay to 0.
    #[arg(long, default_value_t = 0.06)]
    pub warmup: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// L2-SP: pull the weights toward the base's with this strength (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub l2sp: f64,
    /// Keep each earlier epoch's checkpoint in OUT/epoch-<n> (the last epoch's is OUT).
    #[arg(long)]
    pub keep_epoch_checkpoints: bool,
    /// Also save the resumable training state every N steps (0 = only after each epoch).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u64,
    /// Continue from the training state in --out.
    #[arg(long)]
    pub resume: bool,
    /// Add a fresh classification head with these comma-separated labels (for an encoder
    /// without one).
    #[arg(long, value_delimiter = ',')]
    pub init_head: Option<Vec<String>>,
    /// Preprocessing for checkpoint bases (bundles carry their own).
    #[arg(long, default_value = "cardiffnlp", value_parser = parse_preprocess)]
    pub preprocess: Preprocess,
}

/// A `--preprocess` value: `cardiffnlp` or `none`.
pub fn parse_preprocess(s: &str) -> Result<Preprocess, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown preprocessing {s:?}; use cardiffnlp or none"))
}

impl TrainOptions {
    pub fn new(base: PathBuf, data: Vec<PathBuf>, out: PathBuf) -> Self {
        TrainOptions {
            base,
            data,
            out,
            replay: None,
            replay_ratio: 0.0,
            eval_data: None,
            epochs: 1,
            lr: 5e-5,
            batch_size: 32,
            max_len: 64,
            warmup: 0.06,
            seed: 0,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            l2sp: 0.0,
            keep_epoch_checkpoints: false,
            checkpoint_every: 0,
            resume: false,
            init_head: None,
            preprocess: Preprocess::default(),
        }
    }

    /// The HF checkpoint after each epoch (1-based), oldest first: `out/epoch-<n>` for the
    /// earlier ones when `keep_epoch_checkpoints`, and `out` for the last.
    pub fn epoch_checkpoints(&self) -> Vec<(usize, PathBuf)> {
        let earlier = if self.keep_epoch_checkpoints { 1..self.epochs } else { self.epochs..self.epochs };
        earlier.map(|e| (e, self.out.join(format!("epoch-{e}")))).chain([(self.epochs, self.out.clone())]).collect()
    }
}

/// Reported after every step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub step: u64,
    pub total_steps: u64,
    pub epoch: usize,
    pub loss: f32,
    pub examples_per_sec: f64,
}

/// What a finished run reports (also written as `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub steps: u64,
    pub resumed_from_step: u64,
    pub examples: usize,
    pub replay_examples: usize,
    pub wall_seconds: f64,
    pub examples_per_sec: f64,
    pub final_loss: Option<f32>,
    pub eval: Option<EvalReport>,
}

/// A model to start from: config, canonical f32 tensors and its text encoder.
pub struct Base {
    pub config: ModelConfig,
    pub tensors: HashMap<String, Tensor>,
    pub encoder: TextEncoder,
    pub manifest: Option<Manifest>,
}

/// Opens a bundle (dequantizing its weights) or an HF checkpoint directory.
pub fn load_base(path: &Path, init_head: Option<Vec<String>>, preprocess: Preprocess) -> Result<Base, TrainError> {
    if path.join(MANIFEST_FILE).exists() {
        let bad = |detail: String| TrainError::State { path: path.to_path_buf(), detail };
        let manifest = Manifest::from_json(&read_file(&path.join(MANIFEST_FILE))?).map_err(|e| bad(e.to_string()))?;
        let encoder =
            manifest.text_encoder(&read_file(&path.join(&manifest.tokenizer))?).map_err(|e| bad(e.to_string()))?;
        let gguf = read_file(&path.join(MODEL_FILE))?;
        manifest.verify(MODEL_FILE, &gguf).map_err(|e| bad(e.to_string()))?;
        let mut w = GgufWeights::read(&mut std::io::Cursor::new(gguf), &manifest.config, &Device::Cpu)
            .map_err(|e| bad(e.to_string()))?;
        let mut tensors = HashMap::new();
        for name in expected_shapes(&manifest.config).into_keys() {
            let t = w.tensor(&name)?;
            tensors.insert(name, t);
        }
        return Ok(Base { config: manifest.config.clone(), tensors, encoder, manifest: Some(manifest) });
    }
    let ck = Checkpoint::load(path, &LoadOptions { init_head, head_seed: 0, preprocess })?;
    Ok(Base { config: ck.config, tensors: ck.weights.tensors, encoder: ck.encoder, manifest: None })
}

/// Token ids cut to `max_len`, keeping the closing special token.
fn truncate(mut ids: Vec<u32>, max_len: usize) -> Vec<u32> {
    if ids.len() > max_len && max_len >= 2 {
        let last = *ids.last().expect("non-empty");
        ids.truncate(max_len - 1);
        ids.push(last);
    }
    ids
}

/// Training examples: every `data` example plus a seeded replay sample.
fn training_set(opts: &TrainOptions, labels: &[String]) -> Result<(Vec<Example>, usize), TrainError> {
    let mut examples = Vec::new();
    for path in &opts.data {
        examples.extend(load_examples(path, labels)?);
    }
    let mut replayed = 0;
    if let Some(path) = &opts.replay {
        let mut pool = load_examples(path, labels)?;
        let want = ((examples.len() as f64 * opts.replay_ratio).round() as usize).min(pool.len());
        shuffle(&mut pool, &mut SplitMix64(derive_seed(opts.seed, 3, 0)));
        pool.truncate(want);
        replayed = pool.len();
        examples.extend(pool);
    }
    if examples.is_empty() {
        return Err(TrainError::Invalid("no training examples".into()));
    }
    Ok((examples, replayed))
}

/// Hash of what determines the run's numbers; a resumed run must match it.
fn fingerprint(opts: &TrainOptions, ids: &[Vec<u32>], labels: &[u32]) -> String {
    let mut h = Sha256::new();
    let fixed = serde_json::json!({
        "epochs": opts.epochs, "lr": opts.lr, "batch_size": opts.batch_size, "max_len": opts.max_len,
        "warmup": opts.warmup, "seed": opts.seed, "weight_decay": opts.weight_decay,
        "max_grad_norm": opts.max_grad_norm, "replay_ratio": opts.replay_ratio, "l2sp": opts.l2sp,
    });
    h.update(fixed.to_string().as_bytes());
    for (seq, label) in ids.iter().zip(labels) {
        h.update((seq.len() as u32).to_le_bytes());
        for id in seq {
            h.update(id.to_le_bytes());
        }
        h.update(label.to_le_bytes());
    }
    format!("{:x}", h.finalize())
}

/// Evaluates without dropout, in length-sorted batches.
pub fn evaluate(
    model: &Trainable,
    encoder: &TextEncoder,
    examples: &[Example],
    max_len: usize,
    batch_size: usize,
) -> Result<EvalReport, TrainError> {
    let ids: Vec<Vec<u32>> =
        examples.iter().map(|e| encoder.encode(&e.text).map(|ids| truncate(ids, max_len))).collect::<Result<_, _>>()?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let mut predicted = vec![0usize; ids.len()];
    let pad = model.config().pad_token_id;
    for chunk in order.chunks(batch_size.max(1)) {
        let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        let logits = model.logits(&PaddedBatch::new(&seqs, pad))?.to_vec2::<f32>()?;
        for (&i, row) in chunk.iter().zip(logits) {
            predicted[i] = argmax(&row);
        }
    }
    let gold: Vec<usize> = examples.iter().map(|e| e.label).collect();
    Ok(EvalReport::new(&model.config().labels, &gold, &predicted))
}

/// Appends JSON lines to the metrics file.
struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens the log; on resume keeps only lines up to `step` (a killed run may have logged
    /// steps past its last checkpoint).
    fn open(path: PathBuf, keep_up_to: Option<u64>) -> Result<Self, TrainError> {
        let io = |source| TrainError::Io { path: path.clone(), source };
        let kept: Vec<String> = match (keep_up_to, std::fs::read_to_string(&path)) {
            (Some(step), Ok(text)) => text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| s <= step)
                })
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let mut file = std::fs::File::create(&path).map_err(io)?;
        for l in kept {
            writeln!(file, "{l}").map_err(io)?;
        }
        Ok(MetricsLog { path, file })
    }

    fn write(&mut self, v: serde_json::Value) -> Result<(), TrainError> {
        writeln!(self.file, "{v}").map_err(|source| TrainError::Io { path: self.path.clone(), source })
    }
}

/// Loss per step, and (accuracy, macro recall, macro F1) per evaluation, keyed by step.
pub type Curves = (Vec<(u64, f64)>, Vec<(u64, Vec<f64>)>);

/// Reads the loss and evaluation curves back from a metrics file.
pub fn read_curves(path: &Path) -> Curves {
    let (mut loss, mut eval) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let step = v["step"].as_u64().unwrap_or(0);
        if let Some(l) = v["loss"].as_f64() {
            loss.push((step, l));
        }
        if let Some(e) = v.get("eval") {
            let vals = ["accuracy", "macro_recall", "macro_f1"].iter().filter_map(|k| e[*k].as_f64()).collect();
            eval.push((step, vals));
        }
    }
    (loss, eval)
}

/// Runs (or resumes) a fine-tune. `progress` is called after every step.
pub fn train(opts: &TrainOptions, mut progress: impl FnMut(&Progress)) -> Result<TrainSummary, TrainError> {
    if opts.batch_size == 0 || opts.epochs == 0 || opts.max_len < 2 {
        return Err(TrainError::Invalid("batch size and epochs must be positive, max length at least 2".into()));
    }
    let started = Instant::now();
    let base = load_base(&opts.base, opts.init_head.clone(), opts.preprocess)?;
    let labels = base.config.labels.clone();
    let (examples, replayed) = training_set(opts, &labels)?;
    let max_len = opts.max_len.min(base.config.max_tokens());
    let ids: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| base.encoder.encode(&e.text).map(|ids| truncate(ids, max_len)))
        .collect::<Result<_, _>>()?;
    let targets: Vec<u32> = examples.iter().map(|e| e.label as u32).collect();
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let eval_set = match &opts.eval_data {
        Some(p) => Some(load_examples(p, &labels)?),
        None => None,
    };

    let per_epoch = batches_per_epoch(ids.len(), opts.batch_size) as u64;
    let total = per_epoch * opts.epochs as u64;
    let warmup = (opts.warmup * total as f64).ceil() as u64;
    let fp = fingerprint(opts, &ids, &targets);

    std::fs::create_dir_all(&opts.out).map_err(|source| TrainError::Io { path: opts.out.clone(), source })?;
    let mut model = Trainable::new(base.config.clone(), base.tensors, opts.weight_decay)?;
    // Anchored to the base before a resumed state replaces the weights.
    model.optimizer.anchor_to_current(opts.l2sp)?;
    let mut start = 0;
    if opts.resume {
        if let Some((state, tensors)) = read_state(&opts.out)? {
            if state.fingerprint != fp || state.seed != opts.seed {
                return Err(TrainError::Invalid(format!(
                    "{}: the saved training state was made with other options or data; resume needs the same ones",
                    opts.out.display()
                )));
            }
            restore(&mut model.optimizer, &state, &tensors)?;
            start = state.step;
        }
    }
    let mut log = MetricsLog::open(opts.out.join(METRICS_FILE), opts.resume.then_some(start))?;
    let state_at = |step| TrainState { step, total_steps: total, seed: opts.seed, fingerprint: fp.clone() };

    let pad = base.config.pad_token_id;
    let mut last_loss = None;
    let mut eval_report = None;
    let mut seen = 0usize;
    let loop_start = Instant::now();
    for epoch in (start / per_epoch.max(1)) as usize..opts.epochs {
        let _epoch = tracing::info_span!("epoch", epoch).entered();
        let batches = epoch_batches(&lengths, opts.batch_size, derive_seed(opts.seed, 1, epoch as u64));
        for (i, batch) in batches.iter().enumerate() {
            let step = epoch as u64 * per_epoch + i as u64;
            if step < start {
                continue;
            }
            let seqs: Vec<Vec<u32>> = batch.iter().map(|&j| ids[j].clone()).collect();
            let labels: Vec<u32> = batch.iter().map(|&j| targets[j]).collect();
            let lr = opts.lr * super::optim::linear_schedule(step, warmup, total);
            let stats = model.step(
                &PaddedBatch::new(&seqs, pad),
                &labels,
                Some(derive_seed(opts.seed, 2, step)),
                lr,
                opts.max_grad_norm,
            )?;
            seen += batch.len();
            let eps = seen as f64 / loop_start.elapsed().as_secs_f64().max(1e-9);
            last_loss = Some(stats.loss);
            log.write(serde_json::json!({
                "step": step + 1, "epoch": epoch, "loss": stats.loss, "lr": lr,
                "grad_norm": stats.grad_norm, "examples_per_sec": eps,
            }))?;
            let done = step + 1;
            let epoch_end = i + 1 == batches.len();
            if opts.checkpoint_every > 0 && done.is_multiple_of(opts.checkpoint_every) && !epoch_end {
                save_state(&opts.out, &model.optimizer, &state_at(done))?;
            }
            progress(&Progress { step: done, total_steps: total, epoch, loss: stats.loss, examples_per_sec: eps });
        }
        let done = (epoch as u64 + 1) * per_epoch;
        if let Some(set) = &eval_set {
            let report = evaluate(&model, &base.encoder, set, max_len, opts.batch_size.max(32))?;
            log.write(serde_json::json!({
                "step": done, "epoch": epoch,
                "eval": {"n": report.n, "accuracy": report.accuracy, "macro_recall": report.macro_recall, "macro_f1": report.macro_f1},
            }))?;
            eval_report = Some(report);
        }
        write_hf_checkpoint(&opts.out, model.config(), &model.tensors(), &base.encoder)?;
        if opts.keep_epoch_checkpoints && epoch + 1 < opts.epochs {
            let dir = opts.out.join(format!("epoch-{}", epoch + 1));
            write_hf_checkpoint(&dir, model.config(), &model.tensors(), &base.encoder)?;
        }
        save_state(&opts.out, &model.optimizer, &state_at(done))?;
    }
    if start >= total {
        // Resumed after the last epoch: make sure the exported checkpoint is there.
        write_hf_checkpoint(&opts.out, model.config(), &model.tensors(), &base.encoder)?;
    }
    drop(log);
    let (loss, eval) = read_curves(&opts.out.join(METRICS_FILE));
    let png = super::plot::training_curves(&loss, &eval).to_png();
    crate::bundle_writer::write_durably(&opts.out.join(PLOT_FILE), &png)?;
    let wall = started.elapsed().as_secs_f64();
    let summary = TrainSummary {
        steps: total,
        resumed_from_step: start,
        examples: examples.len(),
        replay_examples: replayed,
        wall_seconds: wall,
        examples_per_sec: seen as f64 / loop_start.elapsed().as_secs_f64().max(1e-9),
        final_loss: last_loss,
        eval: eval_report,
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary json");
    crate::bundle_writer::write_durably(&opts.out.join(SUMMARY_FILE), json.as_bytes())?;
    Ok(summary)
}
