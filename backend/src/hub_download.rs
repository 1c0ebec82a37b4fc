//! Fetching a checkpoint from the Hub into the HF cache (honours `HF_ENDPOINT`, `HF_HOME`,
//! `HF_TOKEN`), with a progress bar per file.

use crate::checkpoint::WEIGHT_FILES;
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HubDownloadError {
    #[error("cannot reach the Hub at {endpoint} for {repo_id} ({detail}). To import without network, point --from at a local checkpoint directory (config.json, model.safetensors or pytorch_model.bin, tokenizer files)")]
    Unreachable { endpoint: String, repo_id: String, detail: String },
    #[error("{repo_id}@{revision} has no {what}")]
    MissingFile { repo_id: String, revision: String, what: String },
    #[error("downloading {file} from {repo_id}: {detail}")]
    Download { repo_id: String, file: String, detail: String },
}

/// A checkpoint laid out in the HF cache's snapshot folder.
pub struct Downloaded {
    pub dir: PathBuf,
    /// The commit the files were resolved to.
    pub revision: String,
}

pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string())
}

/// The token from `HF_TOKEN`, else the one `huggingface-cli login` stored.
pub fn token() -> Option<String> {
    std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty()).or_else(|| Cache::from_env().token())
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

/// Downloads what a classifier checkpoint needs (skipping files already in the cache) and
/// returns the snapshot folder.
pub fn download_checkpoint(repo_id: &str, revision: &str, progress: bool) -> Result<Downloaded, HubDownloadError> {
    let endpoint = endpoint();
    let unreachable = |detail: String| HubDownloadError::Unreachable {
        endpoint: endpoint.clone(),
        repo_id: repo_id.to_string(),
        detail,
    };
    let api = ApiBuilder::from_env()
        .with_token(token())
        .with_progress(false)
        .with_retries(2)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    let info = api.repo(repo).info().map_err(|e| unreachable(short(&e)))?;
    let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
    let files = wanted_files(&names).map_err(|what| HubDownloadError::MissingFile {
        repo_id: repo_id.to_string(),
        revision: revision.to_string(),
        what,
    })?;
    // Pin the resolved commit so every file comes from the same revision.
    let pinned = Repo::with_revision(repo_id.to_string(), RepoType::Model, info.sha.clone());
    let api_repo = api.repo(pinned.clone());
    let cache = Cache::from_env().repo(pinned);
    let mut dir = None;
    for file in &files {
        let path = match cache.get(file) {
            Some(p) => p,
            None => {
                let bar = if progress { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
                api_repo.download_with_progress(file, bar).map_err(|e| HubDownloadError::Download {
                    repo_id: repo_id.to_string(),
                    file: file.clone(),
                    detail: short(&e),
                })?
            }
        };
        dir = path.parent().map(|p| p.to_path_buf());
    }
    Ok(Downloaded { dir: dir.expect("config.json is always wanted"), revision: info.sha })
}

fn short(e: &ApiError) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}
