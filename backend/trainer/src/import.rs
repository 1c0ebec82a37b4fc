//! `sentiment-trainer import`: a checkpoint (a Hub model repo, fetched into the HF cache, or a
//! local directory) in, a model bundle out (written by [`crate::bundle_writer`]).

use crate::bundle_writer::{write_bundle, BundleInfo, BundleWriteError, CalibrationTexts, Stage};
use crate::checkpoint::{Checkpoint, CheckpointError, LoadOptions, WEIGHT_FILES};
use crate::data::{load_examples, DataError};
use crate::location::Location;
use hub::{HfCache, HubClient, Repo, RepoId};
use model::Quantization;
use shared::bundle::{Manifest, Source};
use shared::Clock;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{from}: not a checkpoint directory, and not a Hub repo id ({reason})")]
    NotASource { from: String, reason: String },
    #[error("{repo_id}: no such model repo at {endpoint}, or {token} cannot read it")]
    NotFound { endpoint: String, repo_id: RepoId, token: String },
    #[error("cannot reach the Hub at {endpoint} for {repo_id} ({detail}). To import without network, point --from at a local checkpoint directory (config.json, model.safetensors or pytorch_model.bin, tokenizer files)")]
    Unreachable { endpoint: String, repo_id: RepoId, detail: String },
    #[error("{repo_id}@{revision} has no {what}")]
    MissingFile { repo_id: RepoId, revision: String, what: String },
    #[error("downloading {repo_id} into the HF cache: {source}")]
    Download { repo_id: RepoId, source: hub::SnapshotError },
    #[error(transparent)]
    HubConfig(#[from] hub::ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Write(#[from] BundleWriteError),
    #[error("writing the float checkpoint: {0}")]
    SaveCheckpoint(#[from] crate::train::TrainError),
}

/// What `import` does.
pub struct ImportOptions {
    /// A Hub repo id or a local checkpoint directory.
    pub from: String,
    /// Hub revision (branch, tag or commit).
    pub revision: String,
    pub quantization: Quantization,
    pub out: PathBuf,
    pub load: LoadOptions,
    /// Bundle version (default: creation time and model hash).
    pub version: Option<String>,
    /// q4k only: a dataset of texts to calibrate GPTQ on, and how many of them to use.
    pub calibration: Option<(PathBuf, usize)>,
    /// Also write the float checkpoint here (`config.json`, `model.safetensors`,
    /// `tokenizer.json`): what `publish --checkpoint` keeps for the next fine-tune.
    pub checkpoint_out: Option<PathBuf>,
}

/// What `import` is busy with, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// Fetching from `endpoint` (once, before the files).
    Connecting {
        endpoint: &'a str,
    },
    Downloading {
        file: &'a str,
        done: u64,
        total: Option<u64>,
    },
    /// The checkpoint is read: tensors it has that the classifier does not use, and the labels
    /// of a fresh head when one was added.
    Loaded {
        ignored: &'a [String],
        fresh_head: Option<&'a [String]>,
    },
    Writing {
        stage: Stage,
        done: usize,
        total: usize,
    },
}

/// A checkpoint laid out in the HF cache's snapshot folder.
pub struct Downloaded {
    pub dir: PathBuf,
    /// The commit the files were resolved to.
    pub revision: String,
}

/// Imports a checkpoint into a bundle in `opts.out`; returns the bundle's manifest.
pub fn import(
    opts: &ImportOptions,
    clock: &Clock,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, ImportError> {
    let (dir, source) = match Location::parse(&opts.from) {
        Location::Local(dir) if dir.is_dir() => {
            let abs = dir.canonicalize().unwrap_or(dir);
            // The folder's name only: the manifest is public (the page shows its source), and a
            // machine's directory layout is nobody's business.
            let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (abs, Source { repo_id: format!("local:{name}"), revision: None })
        }
        Location::Local(_) => {
            let reason = match opts.from.parse::<RepoId>() {
                Err(e) => e.reason.to_owned(),
                Ok(_) => "a file of that name exists here".to_owned(),
            };
            return Err(ImportError::NotASource { from: opts.from.clone(), reason });
        }
        Location::Hub(repo_id) => {
            let client = HubClient::from_env()?;
            progress(Progress::Connecting { endpoint: client.endpoint() });
            let d =
                download_checkpoint(&client, &HfCache::from_env(), &repo_id, &opts.revision, |file, done, total| {
                    progress(Progress::Downloading { file, done, total })
                })?;
            (d.dir, Source { repo_id: repo_id.to_string(), revision: Some(d.revision) })
        }
    };
    let ck = Checkpoint::load(&dir, &opts.load)?;
    if let Some(out) = &opts.checkpoint_out {
        let tensors = ck.weights.tensors.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        crate::train::state::write_hf_checkpoint(out, &ck.config, &tensors, &ck.encoder)?;
    }
    let fresh_head = ck.weights.fresh_head.then_some(ck.config.labels.as_slice());
    progress(Progress::Loaded { ignored: &ck.weights.ignored, fresh_head });
    let calibration = match &opts.calibration {
        Some((path, n)) => {
            let texts = load_examples(path, &ck.config.labels)?.into_iter().map(|e| e.text).collect();
            Some(CalibrationTexts::sample(texts, *n, path.display().to_string()))
        }
        None => None,
    };
    let info = BundleInfo {
        source,
        quantization: opts.quantization,
        version: opts.version.clone(),
        parent_version: None,
        created_at: clock.now_rfc3339(),
        metrics: Default::default(),
        lineage: None,
        calibration,
    };
    let manifest =
        write_bundle(&ck, info, &opts.out, |stage, done, total| progress(Progress::Writing { stage, done, total }))?;
    Ok(manifest)
}

/// Which of a repo's files a classifier checkpoint needs.
fn wanted_files(names: &[String]) -> Result<Vec<String>, String> {
    let has = |f: &str| names.iter().any(|n| n == f);
    let mut files = vec![];
    if !has("config.json") {
        return Err("config.json".into());
    }
    files.push("config.json".to_string());
    let weights = WEIGHT_FILES.iter().find(|f| has(f)).ok_or("model.safetensors or pytorch_model.bin")?;
    files.push(weights.to_string());
    let tokenizer: &[&str] = if has("tokenizer.json") {
        &["tokenizer.json"]
    } else if has("vocab.json") && has("merges.txt") {
        &["vocab.json", "merges.txt"]
    } else if has("vocab.txt") {
        &["vocab.txt"]
    } else {
        return Err("tokenizer files (tokenizer.json, vocab.json + merges.txt, or vocab.txt)".into());
    };
    files.extend(tokenizer.iter().map(|s| s.to_string()));
    for extra in ["tokenizer_config.json", "special_tokens_map.json"] {
        if has(extra) {
            files.push(extra.to_string());
        }
    }
    Ok(files)
}

/// Downloads what a classifier checkpoint needs into the HF cache (skipping files already
/// there, whoever fetched them) and returns the snapshot folder.
pub fn download_checkpoint(
    client: &HubClient,
    cache: &HfCache,
    repo_id: &RepoId,
    revision: &str,
    progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<Downloaded, ImportError> {
    let repo = Repo::model(repo_id.clone()).at_revision(revision);
    let info = client.repo_info(&repo).map_err(|e| match e {
        e if e.is_not_found() || matches!(e, hub::HubError::Status { status: 401, .. }) => ImportError::NotFound {
            endpoint: client.endpoint().to_owned(),
            repo_id: repo_id.clone(),
            token: client.token_source().to_string(),
        },
        e => ImportError::Unreachable {
            endpoint: client.endpoint().to_owned(),
            repo_id: repo_id.clone(),
            detail: first_line(&e.to_string()),
        },
    })?;
    let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
    let files = wanted_files(&names).map_err(|what| ImportError::MissingFile {
        repo_id: repo_id.clone(),
        revision: revision.to_string(),
        what,
    })?;
    // Pinned to the resolved commit, so every file comes from the same revision.
    let snapshot = cache
        .download(client, &repo, &info.sha, &files, progress)
        .map_err(|source| ImportError::Download { repo_id: repo_id.clone(), source })?;
    Ok(Downloaded { dir: snapshot.dir, revision: snapshot.commit })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
