//! `sentiment-trainer`: import checkpoints into bundles, predict, evaluate (and, later, train,
//! monitor and republish). Parses arguments and wires the library together.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use model::Quantization;
use sentiment_trainer::bundle_writer::Stage;
use sentiment_trainer::checkpoint::LoadOptions;
use sentiment_trainer::data::load_examples;
use sentiment_trainer::import::{ImportOptions, Progress as ImportProgress};
use sentiment_trainer::predict::Predictor;
use sentiment_trainer::train::{parse_preprocess, TrainOptions};
use shared::{Clock, Preprocess};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Import, run and evaluate Sentiment Monitor models, and retrain them on feedback.
///
/// Commands that talk to the Hub read its settings from the environment: HF_ENDPOINT (default
/// https://huggingface.co), a token (HF_TOKEN, else the one `hf auth login` saved: HF_TOKEN_PATH
/// or $HF_HOME/token) and SENTIMENT_HUB_TIMEOUT (default 60s). `import` of a public repo needs
/// no token (a private one: read access) and keeps downloads in the HF cache (HF_HUB_CACHE or
/// $HF_HOME/hub); `monitor` and `nightly` read the logs dataset (read access when private);
/// `publish`, `rollback` and `nightly` write to the model repo (write access).
#[derive(Parser)]
#[command(name = "sentiment-trainer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a checkpoint (Hub repo id or local directory) into a model bundle.
    Import {
        /// Hub repo id (e.g. cardiffnlp/twitter-roberta-base-sentiment-latest) or a local checkpoint directory.
        #[arg(long, env = "SENTIMENT_MODEL_SOURCE")]
        from: String,
        /// Hub revision (branch, tag or commit).
        #[arg(long, default_value = "main")]
        revision: String,
        /// Weight format of the bundle.
        #[arg(long, default_value = "q8_0")]
        quant: Quantization,
        /// Output bundle directory.
        #[arg(long)]
        out: PathBuf,
        /// Add a fresh classification head with these comma-separated labels (for an encoder
        /// without one, e.g. a sentence-embedding checkpoint).
        #[arg(long, value_delimiter = ',')]
        init_head: Option<Vec<String>>,
        /// Seed of the fresh head.
        #[arg(long, default_value_t = 0)]
        head_seed: u64,
        /// Text preprocessing recorded in the bundle and applied before tokenizing.
        #[arg(long, default_value = "cardiffnlp", value_parser = parse_preprocess)]
        preprocess: Preprocess,
        /// Bundle version (default: creation time and model hash).
        #[arg(long)]
        version: Option<String>,
        /// q4k only: quantize with GPTQ, calibrated on texts from this dataset (any format
        /// `eval` reads; labels are not used). Use texts like the model will see, never the
        /// data you evaluate on.
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// How many texts of --calibration to use, spread evenly over the dataset.
        #[arg(long, default_value_t = sentiment_trainer::bundle_writer::CALIBRATION_TEXTS)]
        calibration_texts: usize,
    },
    /// Classify texts given as arguments, or read from stdin one per line.
    Predict {
        #[command(flatten)]
        model: ModelArgs,
        /// One JSON object per line: {"text","label","scores","logits"}.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        texts: Vec<String>,
    },
    /// Which words drove each prediction: every word's weight toward every label, by occlusion
    /// on the model as it ships (docs/explain.md). Texts as arguments, or stdin one per line.
    Explain {
        #[command(flatten)]
        model: ModelArgs,
        /// One JSON object per line: {"text","method","label","scores","words":[{"word","start","end","weights"}]}.
        #[arg(long)]
        json: bool,
        texts: Vec<String>,
    },
    /// How faithful the explanations are: the predicted label's probability after deleting each
    /// text's top-k words against k random words, k = 1..K, and the ratio of the two AOPCs
    /// (docs/explain.md).
    Faithfulness {
        #[command(flatten)]
        model: ModelArgs,
        /// Texts: X_text.txt, a .jsonl of {text,label} or a .csv with text,label (labels unused).
        #[arg(long)]
        data: PathBuf,
        /// How many texts, from the first.
        #[arg(long, default_value_t = 500)]
        limit: usize,
        /// Largest number of words deleted.
        #[arg(long, default_value_t = 5)]
        max_k: usize,
        /// Random deletions per text and k.
        #[arg(long, default_value_t = 5)]
        random_draws: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune a model (all weights) on labelled data; writes an HF-layout checkpoint to --out.
    Train {
        #[command(flatten)]
        options: TrainOptions,
        /// Threads for the tensor kernels (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Blend two checkpoints of one model in weight space (WiSE-FT): (1 - weight)·from + weight·to.
    Interpolate {
        /// The starting model's HF checkpoint directory (e.g. the champion's).
        #[arg(long)]
        from: PathBuf,
        /// Its fine-tune (same architecture and labels).
        #[arg(long)]
        to: PathBuf,
        /// 0 gives `from`, 1 gives `to`.
        #[arg(long)]
        weight: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Decide whether the champion needs retraining from the feedback records; prints JSON.
    Monitor {
        /// A local directory of feedback JSONL shards (a server data dir, its segments/, or a
        /// downloaded dataset) or a Hub dataset id.
        #[arg(long)]
        feedback: String,
        /// The champion bundle (its version selects the records; its labels the mix).
        #[arg(long)]
        model: PathBuf,
        /// Fewest champion records before any decision to retrain.
        #[arg(long, default_value_t = 200)]
        min_samples: u64,
        /// Retrain only if the interval's upper bound is below baseline minus this.
        #[arg(long, default_value_t = 0.02)]
        tolerance: f64,
        /// Expected agreement on submitted feedback (default: the manifest's
        /// metrics.agreement_baseline).
        #[arg(long)]
        baseline: Option<f64>,
    },
    /// Publish a bundle to a model store (local directory or Hub model repo) and record it in
    /// the store's registry.json; by default it becomes champion (served at the root).
    Publish {
        /// The bundle directory.
        #[arg(long)]
        bundle: PathBuf,
        /// A local directory or a Hub model repo id (owner/name).
        #[arg(long)]
        to: String,
        /// The float HF checkpoint the bundle was made from, kept for the next fine-tune.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Record the version without making it champion.
        #[arg(long)]
        no_champion: bool,
        /// The weights' licence for the model card, as a Hub licence id (e.g. apache-2.0;
        /// kept for later versions).
        #[arg(long)]
        license: Option<String>,
        /// A Hub dataset the model was trained or evaluated on, for the model card (repeatable;
        /// the logs dataset is added by itself once `nightly` trains on it).
        #[arg(long)]
        dataset: Vec<String>,
    },
    /// Give an empty model store its first champion: import the production checkpoint and
    /// publish it (bundle, float checkpoint, registry.json, model card). Does nothing when the
    /// store already has a champion. Creates the Hub model repo (public) if it is missing.
    FirstChampion {
        /// The checkpoint: a Hub repo id or a local directory.
        #[arg(
            long,
            env = "SENTIMENT_MODEL_SOURCE",
            default_value = "cardiffnlp/twitter-roberta-base-sentiment-latest"
        )]
        from: String,
        /// Hub revision of --from (branch, tag or commit).
        #[arg(long, default_value = "main")]
        revision: String,
        /// The model store: a Hub model repo id (owner/name) or a local directory.
        #[arg(long, env = "SENTIMENT_REGISTRY")]
        to: String,
        #[arg(long, default_value = "q8_0")]
        quant: Quantization,
        #[arg(long, default_value = "cardiffnlp", value_parser = parse_preprocess)]
        preprocess: Preprocess,
        /// The weights' licence for the model card, as a Hub licence id (the base model's).
        #[arg(long)]
        license: Option<String>,
        /// A Hub dataset the base model was trained or evaluated on, for the model card (repeatable).
        #[arg(long)]
        dataset: Vec<String>,
        /// Where the bundle is made before it is published (deleted afterwards).
        #[arg(long, default_value = "target/first-champion")]
        work_dir: PathBuf,
    },
    /// Merge the logs dataset's small shards into one file per replica and day, in one commit,
    /// and keep its dataset card (README.md) current. Run before `monitor`/`nightly`.
    Compact {
        /// The Hub logs dataset (owner/name).
        #[arg(long, env = "SENTIMENT_DATASET")]
        dataset: String,
        /// Compact only whole UTC days that ended at least this long ago (e.g. 48h, 3d).
        #[arg(long, default_value = "48h", value_parser = humantime::parse_duration)]
        min_age: std::time::Duration,
        /// The model's labels, for the card's schema.
        #[arg(long, env = "SENTIMENT_LABELS", value_delimiter = ',', default_value = "negative,neutral,positive")]
        labels: Vec<String>,
        /// Judge the shards' age as if it were this time (RFC 3339; tests and rehearsals).
        #[arg(long, hide = true, value_parser = humantime::parse_rfc3339)]
        now: Option<std::time::SystemTime>,
    },
    /// Make an earlier published version champion again.
    Rollback {
        /// The store: a local directory or a Hub model repo id (owner/name).
        #[arg(long, env = "SENTIMENT_REGISTRY")]
        registry: String,
        /// The version to restore.
        #[arg(long)]
        to: String,
        /// Why (kept in the registry's history).
        #[arg(long, default_value = "manual rollback")]
        reason: String,
    },
    /// One retraining cycle: monitor → fine-tune → gate → publish; writes a report.
    Nightly {
        /// The TOML configuration (.github/nightly.toml is the production one).
        #[arg(long)]
        config: PathBuf,
        /// Retrain even if the monitor says hold.
        #[arg(long)]
        force_retrain: bool,
        /// The model store, overriding the file's `registry`.
        #[arg(long, env = "SENTIMENT_REGISTRY")]
        registry: Option<String>,
        /// The feedback (local dir or Hub dataset id), overriding the file's `feedback`.
        #[arg(long, env = "SENTIMENT_DATASET")]
        feedback: Option<String>,
    },
    /// Measure accuracy, macro recall, macro F1 and the confusion matrix on labelled data.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// X_text.txt (with X_labels.txt beside it), a .jsonl of {text,label} or a .csv with text,label.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
}

/// The model a command runs: `--model` and how to preprocess texts for it.
#[derive(clap::Args)]
struct ModelArgs {
    /// A bundle directory (manifest.json) or a checkpoint directory.
    #[arg(long)]
    model: PathBuf,
    /// Preprocessing for checkpoint directories (bundles carry their own).
    #[arg(long, default_value = "cardiffnlp", value_parser = parse_preprocess)]
    preprocess: Preprocess,
}

impl ModelArgs {
    fn open(&self) -> Result<Predictor> {
        Ok(Predictor::open(&self.model, self.preprocess)?)
    }
}

fn main() {
    sentiment_trainer::apply_process_settings();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // With RUST_LOG=sentiment_trainer=info, each nightly stage and training epoch logs how
        // long it took when it ends.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, skipping causes the message already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg.replace('\n', " ")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Import {
            from,
            revision,
            quant,
            out,
            init_head,
            head_seed,
            preprocess,
            version,
            calibration,
            calibration_texts,
        } => {
            if calibration.is_some() && quant != Quantization::Q4K {
                bail!("--calibration applies to --quant q4k only (q8_0 is rotated, not calibrated)");
            }
            let opts = ImportOptions {
                from,
                revision,
                quantization: quant,
                out,
                load: LoadOptions { init_head, head_seed, preprocess },
                version,
                calibration: calibration.map(|path| (path, calibration_texts)),
                checkpoint_out: None,
            };
            import(&opts)
        }
        Command::Predict { model, json, batch_size, texts } => predict(&model, json, batch_size, texts),
        Command::Eval { model, data, json, batch_size } => eval(&model, &data, json, batch_size),
        Command::Explain { model, json, texts } => explain(&model, json, texts),
        Command::Faithfulness { model, data, limit, max_k, random_draws, seed, json } => {
            let opts = sentiment_trainer::faithfulness::Options { max_k, random_draws, seed };
            faithfulness(&model, &data, limit, &opts, json)
        }
        Command::Monitor { feedback, model, min_samples, tolerance, baseline } => {
            monitor(&feedback, &model, min_samples, tolerance, baseline)
        }
        Command::Publish { bundle, to, checkpoint, no_champion, license, dataset } => {
            let store = sentiment_trainer::registry::open_store(&to)?;
            let opts = sentiment_trainer::registry::PublishOptions {
                checkpoint: checkpoint.as_deref(),
                champion: !no_champion,
                kind: sentiment_trainer::registry::ChangeKind::Published,
                card: sentiment_trainer::registry::CardSettings { license, datasets: dataset },
                ..sentiment_trainer::registry::PublishOptions::new("published by hand", Clock::system().now_rfc3339())
            };
            let registry = sentiment_trainer::registry::publish(&*store, &bundle, &opts)?;
            let manifest = bundle.join(shared::bundle::MANIFEST_FILE);
            let version = shared::Manifest::from_json(&std::fs::read(&manifest)?)?.version;
            let champion = registry.champion.as_deref().unwrap_or("none");
            println!("Published {version} to {}; champion: {champion}", store.location());
            Ok(())
        }
        Command::FirstChampion { from, revision, to, quant, preprocess, license, dataset, work_dir } => {
            first_champion(from, revision, to, quant, preprocess, license, dataset, work_dir)
        }
        Command::Compact { dataset, min_age, labels, now } => {
            use sentiment_trainer::logs::compact::{compact, CompactOptions};
            let sentiment_trainer::location::Location::Hub(id) = sentiment_trainer::location::Location::parse(&dataset)
            else {
                bail!("--dataset {dataset:?}: compact works on a Hub logs dataset (owner/name)");
            };
            let client = hub::HubClient::from_env()?;
            let now = now.unwrap_or_else(std::time::SystemTime::now);
            let opts = CompactOptions { dataset: id.clone(), min_age, labels, now };
            let r = compact(&client, &opts)?;
            match &r.commit {
                Some(c) if r.merged_files == 0 => println!(
                    "{id}: wrote the dataset card in commit {c}; nothing to compact; {} data files, at most {} in a folder",
                    r.files_after, r.largest_folder
                ),
                Some(c) => println!(
                    "Compacted {id}: {} files ({} records) into {}{} in commit {c}; {} data files now, at most {} in a folder",
                    r.merged_files,
                    r.records,
                    r.written_files,
                    if r.card_written { ", and wrote the dataset card" } else { "" },
                    r.files_after,
                    r.largest_folder
                ),
                None => println!(
                    "{id}: nothing to compact; {} data files, at most {} in a folder",
                    r.files_after, r.largest_folder
                ),
            }
            Ok(())
        }
        Command::Rollback { registry, to, reason } => {
            let store = sentiment_trainer::registry::open_store(&registry)?;
            let r = sentiment_trainer::registry::rollback(&*store, &to, &reason, &Clock::system().now_rfc3339())?;
            println!("Champion at {} is now {}", store.location(), r.champion.as_deref().unwrap_or(""));
            Ok(())
        }
        Command::Nightly { config, force_retrain, registry, feedback } => {
            let mut cfg = sentiment_trainer::nightly::NightlyConfig::from_file(&config)?;
            cfg.registry = registry.unwrap_or(cfg.registry);
            cfg.feedback = feedback.unwrap_or(cfg.feedback);
            nightly(&cfg, force_retrain)
        }
        Command::Interpolate { from, to, weight, out } => {
            sentiment_trainer::train::interpolate::interpolate_checkpoints(&from, &to, weight, &out)
                .with_context(|| format!("interpolating into {}", out.display()))?;
            println!("Wrote (1 - {weight})·{} + {weight}·{} to {}", from.display(), to.display(), out.display());
            Ok(())
        }
        Command::Train { options, threads } => {
            if let Some(n) = threads {
                std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            }
            train(&options)
        }
    }
}

fn monitor(feedback: &str, model: &Path, min_samples: u64, tolerance: f64, baseline: Option<f64>) -> Result<()> {
    use sentiment_trainer::monitor::{assess, manifest_reference, read_feedback, MonitorError, Thresholds};
    let manifest_path = model.join(shared::bundle::MANIFEST_FILE);
    let manifest = shared::Manifest::from_json(
        &std::fs::read(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .with_context(|| format!("{}", manifest_path.display()))?;
    let (recorded, mix) = manifest_reference(&manifest.metrics);
    let baseline = baseline.or(recorded).ok_or(MonitorError::NoBaseline)?;
    let set = read_feedback(feedback)?;
    let t = Thresholds { min_samples, tolerance, ..Default::default() };
    let decision = assess(&set, &manifest.version, &manifest.labels, baseline, mix, &t);
    println!("{}", serde_json::to_string(&decision)?);
    Ok(())
}

fn nightly(cfg: &sentiment_trainer::nightly::NightlyConfig, force_retrain: bool) -> Result<()> {
    use sentiment_trainer::nightly::{run, NightlyOptions, Outcome};
    let pb = train_bar();
    let report = run(cfg, &NightlyOptions { force_retrain }, |p| show_step(&pb, p));
    pb.finish_and_clear();
    let md =
        report.write(&cfg.report_dir).with_context(|| format!("writing the report to {}", cfg.report_dir.display()))?;
    println!("nightly: {} — {} (report: {})", report.outcome.as_str(), report.reason, md.display());
    if report.outcome == Outcome::Failed {
        bail!("nightly run failed: {}", report.reason);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn first_champion(
    from: String,
    revision: String,
    to: String,
    quant: Quantization,
    preprocess: Preprocess,
    license: Option<String>,
    datasets: Vec<String>,
    work_dir: PathBuf,
) -> Result<()> {
    use sentiment_trainer::first_champion::{run, FirstChampionOptions, Outcome};
    let import = ImportOptions {
        from: from.clone(),
        revision: revision.clone(),
        quantization: quant,
        out: PathBuf::new(),
        load: LoadOptions { preprocess, ..Default::default() },
        version: None,
        calibration: None,
        checkpoint_out: None,
    };
    let opts = FirstChampionOptions {
        import,
        to: to.clone(),
        work_dir,
        card: sentiment_trainer::registry::CardSettings { license, datasets },
    };
    let pb = bar(0, "");
    let outcome = run(opts, &Clock::system(), |p| match p {
        ImportProgress::Connecting { endpoint } => {
            pb.suspend(|| eprintln!("Downloading {from}@{revision} from {endpoint}"));
        }
        ImportProgress::Downloading { file, done, total } => {
            pb.set_style(byte_style());
            pb.set_message(file.to_string());
            pb.set_length(total.unwrap_or(done));
            pb.set_position(done);
        }
        ImportProgress::Loaded { .. } => pb.set_style(count_style()),
        ImportProgress::Writing { done, total, .. } => {
            pb.set_message(format!("Quantizing to {quant}"));
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        }
    })?;
    pb.finish_and_clear();
    match outcome {
        Outcome::AlreadyThere(v) => println!("{to} already has a champion ({v}): nothing to do"),
        Outcome::Published(m) => println!(
            "Published {} (imported from {}, {}) to {to} as its first champion",
            m.version, m.source.repo_id, m.quantization
        ),
    }
    Ok(())
}

fn train_bar() -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps (ETA {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb
}

fn show_step(pb: &ProgressBar, p: &sentiment_trainer::train::Progress) {
    pb.set_length(p.total_steps);
    pb.set_position(p.step);
    pb.set_message(format!("epoch {} loss {:.4} {:.1} ex/s", p.epoch + 1, p.loss, p.examples_per_sec));
}

fn train(opts: &TrainOptions) -> Result<()> {
    let pb = train_bar();
    let summary = sentiment_trainer::train::train(opts, |p| show_step(&pb, p))
        .with_context(|| format!("training into {}", opts.out.display()))?;
    pb.finish_and_clear();
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn count_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
        .expect("static template")
        .progress_chars("=> ")
}

fn byte_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})")
        .expect("static template")
        .progress_chars("=> ")
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(count_style());
    pb.set_message(what.to_string());
    pb
}

fn import(opts: &ImportOptions) -> Result<()> {
    let quant = opts.quantization;
    let pb = bar(0, "");
    let mut file = String::new();
    let manifest = sentiment_trainer::import::import(opts, &Clock::system(), |p| match p {
        ImportProgress::Connecting { endpoint } => {
            pb.suspend(|| eprintln!("Downloading {}@{} from {endpoint}", opts.from, opts.revision));
        }
        ImportProgress::Downloading { file: f, done, total } => {
            if f != file {
                file = f.to_owned();
                pb.set_style(byte_style());
                pb.set_message(file.clone());
                pb.set_position(0);
            }
            pb.set_length(total.unwrap_or(done));
            pb.set_position(done);
        }
        ImportProgress::Loaded { ignored, fresh_head } => {
            for name in ignored {
                tracing::info!("ignoring tensor {name} (not used by the classifier)");
            }
            if let Some(labels) = fresh_head {
                pb.suspend(|| {
                    eprintln!(
                        "Added a fresh classification head (seed {}) for labels {}",
                        opts.load.head_seed,
                        labels.join(", ")
                    )
                });
            }
            pb.set_style(count_style());
        }
        ImportProgress::Writing { stage, done, total } => {
            pb.set_message(match stage {
                Stage::Calibrating => "Calibrating (GPTQ)".to_string(),
                Stage::Quantizing => format!("Quantizing to {quant}"),
            });
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        }
    })?;
    pb.finish_and_clear();
    let size = manifest.files.values().map(|f| f.size).sum::<u64>();
    println!(
        "Wrote the bundle of {} (version {}, {}, {} labels, {:.1} MB) to {}",
        manifest.source.repo_id,
        manifest.version,
        manifest.quantization,
        manifest.labels.len(),
        size as f64 / 1e6,
        opts.out.display()
    );
    Ok(())
}

/// Reads stdin lines, refusing empty and non-UTF-8 ones with their line number.
fn stdin_texts() -> Result<Vec<String>> {
    let mut texts = Vec::new();
    let stdin = std::io::stdin();
    for (i, line) in stdin.lock().split(b'\n').enumerate() {
        let line = line.context("reading stdin")?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let text = std::str::from_utf8(line).map_err(|_| anyhow::anyhow!("stdin line {}: not valid UTF-8", i + 1))?;
        if text.trim().is_empty() {
            bail!("stdin line {}: empty text", i + 1);
        }
        texts.push(text.to_string());
    }
    Ok(texts)
}

fn predict(model: &ModelArgs, json: bool, batch_size: usize, texts: Vec<String>) -> Result<()> {
    let texts = if texts.is_empty() { stdin_texts()? } else { texts };
    for (i, t) in texts.iter().enumerate() {
        if t.trim().is_empty() {
            bail!("text {} is empty", i + 1);
        }
    }
    let predictor = model.open()?;
    let preds = predictor.predict_many(&texts, batch_size, |_| {})?;
    let mut out = std::io::stdout().lock();
    for p in preds {
        if json {
            writeln!(out, "{}", serde_json::to_string(&p)?)?;
        } else {
            let scores: Vec<String> = p.scores.iter().map(|(l, s)| format!("{l} {s:.3}")).collect();
            writeln!(out, "{:<9} [{}]  {}", p.label, scores.join(", "), p.text)?;
        }
    }
    Ok(())
}

/// An explanation as `explain --json` prints it: weights and scores keyed by label.
fn explanation_json(text: &str, ex: &model::explain::Explanation) -> serde_json::Value {
    let by_label = |xs: &[f32]| -> serde_json::Map<String, serde_json::Value> {
        ex.labels.iter().zip(xs).map(|(l, x)| (l.clone(), serde_json::json!(x))).collect()
    };
    let words: Vec<serde_json::Value> = ex
        .words
        .iter()
        .map(|w| {
            let mut o =
                serde_json::json!({"word": w.word, "start": w.start, "end": w.end, "weights": by_label(&w.weights)});
            if w.beyond_limit {
                o["beyond_limit"] = true.into();
            }
            o
        })
        .collect();
    serde_json::json!({"text": text, "method": ex.method, "label": ex.label, "scores": by_label(&ex.scores), "words": words})
}

fn explain(model: &ModelArgs, json: bool, texts: Vec<String>) -> Result<()> {
    let texts = if texts.is_empty() { stdin_texts()? } else { texts };
    let predictor = model.open()?;
    let mut out = std::io::stdout().lock();
    for text in &texts {
        let ex = model::explain::explain(&predictor.encoder, &predictor.classifier, text)?;
        if json {
            writeln!(out, "{}", explanation_json(text, &ex))?;
            continue;
        }
        let label = ex.labels.iter().position(|l| *l == ex.label).unwrap_or(0);
        let scores: Vec<String> = ex.labels.iter().zip(&ex.scores).map(|(l, s)| format!("{l} {s:.3}")).collect();
        writeln!(out, "{:<9} [{}]  {text}", ex.label, scores.join(", "))?;
        for w in &ex.words {
            let note = if w.beyond_limit { "  (past the model's token limit: not read)" } else { "" };
            writeln!(out, "  {:+.4}  {}{note}", w.weights[label], w.word)?;
        }
    }
    Ok(())
}

fn faithfulness(
    model: &ModelArgs,
    data: &Path,
    limit: usize,
    opts: &sentiment_trainer::faithfulness::Options,
    json: bool,
) -> Result<()> {
    let predictor = model.open()?;
    let mut examples = load_examples(data, predictor.labels())?;
    examples.truncate(limit);
    if examples.is_empty() {
        bail!("{}: no texts", data.display());
    }
    let texts: Vec<String> = examples.into_iter().map(|e| e.text).collect();
    let pb = bar(texts.len() as u64, "Explaining");
    let t0 = std::time::Instant::now();
    let report = sentiment_trainer::faithfulness::evaluate(
        &texts,
        opts,
        |t| model::explain::explain(&predictor.encoder, &predictor.classifier, t).map_err(anyhow::Error::from),
        |ts| {
            let preds = predictor.predict_many(ts, 32, |_| {})?;
            let labels = predictor.labels();
            Ok(preds.into_iter().map(|p| labels.iter().map(|l| p.scores[l]).collect()).collect())
        },
        |done| pb.set_position(done as u64),
    )?;
    pb.finish_and_clear();
    let seconds = t0.elapsed().as_secs_f64();
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["model"] = model.model.display().to_string().into();
        v["data"] = data.display().to_string().into();
        v["seconds"] = seconds.into();
        println!("{v}");
        return Ok(());
    }
    println!(
        "{} texts of {} ({} without words skipped), {} random draws per text and k, seed {}, {seconds:.0} s",
        report.texts,
        data.display(),
        report.skipped,
        opts.random_draws,
        opts.seed
    );
    println!("k  drop, top-k words  drop, k random words");
    for (k, (t, r)) in report.top.iter().zip(&report.random).enumerate() {
        println!("{:<2} {t:>17.4}  {r:>20.4}", k + 1);
    }
    println!("AOPC: top-k {:.4}, random {:.4}, ratio {:.2}×", report.aopc_top, report.aopc_random, report.ratio);
    Ok(())
}

fn eval(model: &ModelArgs, data: &Path, json: bool, batch_size: usize) -> Result<()> {
    let predictor = model.open()?;
    let labels = predictor.labels().to_vec();
    let examples = load_examples(data, &labels)?;
    if examples.is_empty() {
        bail!("{}: no examples", data.display());
    }
    let pb = bar(examples.len() as u64, "Evaluating");
    let report = predictor.evaluate(&examples, batch_size, |done| pb.set_position(done as u64))?;
    pb.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
