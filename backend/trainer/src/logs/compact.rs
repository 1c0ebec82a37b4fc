//! `sentiment-trainer compact`: merges each server replica's small shards into one file per
//! day, in one commit, so a folder of the logs dataset stays far below the Hub's advice of
//! 10,000 entries (a year of five-minute syncs is 105,120 shards per replica; compacted, 365
//! files). Also keeps the dataset card current, in the same commit.
//!
//! What it merges: consecutive shards of one instance (and the range file they continue) whose
//! first records fall on the same UTC day, only once that whole day ended at least `min_age`
//! ago (48 h by default: a server that crashed between its commit and saving its state looks
//! for its shard again at its next round or start), and never an instance's newest shard (the
//! server may still be confirming it). The new file's bytes are the old files'
//! bytes in segment order, so count and content are unchanged. The commit adds the range
//! files and deletes what they replace, on top of the commit it read (`parentCommit`): a
//! reader pinned to any commit sees every record exactly once, and a server commit racing the
//! compaction makes it start over (up to [`ATTEMPTS`] times) instead of deleting blind.

use super::{card, LogFile};
use hub::{AddFile, Commit, HubClient, HubError, Repo, RepoId};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Tries when the dataset keeps moving under the compaction (a server synced meanwhile).
pub const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("logs dataset {repo}: {source}")]
    Hub { repo: RepoId, source: HubError },
    #[error("logs dataset {repo}: {path} ends without a newline; not merging a torn file")]
    Torn { repo: RepoId, path: String },
    #[error("logs dataset {repo} changed under the compaction {ATTEMPTS} times in a row; try again later")]
    Busy { repo: RepoId },
}

#[derive(Debug, Clone)]
pub struct CompactOptions {
    pub dataset: RepoId,
    /// Only shards of UTC days that ended at least this long ago.
    pub min_age: Duration,
    /// The model's labels (the card's `scores` fields).
    pub labels: Vec<String>,
    pub now: SystemTime,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CompactReport {
    /// The commit made, if any.
    pub commit: Option<String>,
    /// Files merged away and the range files that replaced them.
    pub merged_files: usize,
    pub written_files: usize,
    /// Records in the merged files (the same in the written ones).
    pub records: u64,
    /// Whether the dataset card was written (missing or out of date).
    pub card_written: bool,
    /// Data files in the dataset after the run, and in its largest folder.
    pub files_after: usize,
    pub largest_folder: usize,
}

struct Planned {
    add: Vec<AddFile>,
    delete: Vec<String>,
    records: u64,
    card: bool,
    files_after: usize,
    largest_folder: usize,
}

const DAY: Duration = Duration::from_secs(86_400);

/// The UTC day (`YYYY-MM-DD`) of a shard's first record, and when that day ends.
fn day_of(first_line: &[u8]) -> Option<(String, SystemTime)> {
    #[derive(serde::Deserialize)]
    struct At {
        received_at: String,
    }
    let at: At = serde_json::from_slice(first_line).ok()?;
    let day = at.received_at.get(..10)?;
    let start = humantime::parse_rfc3339(&format!("{day}T00:00:00Z")).ok()?;
    Some((day.to_string(), start + DAY))
}

/// Compacts `opts.dataset` (see the module's doc).
pub fn compact(client: &HubClient, opts: &CompactOptions) -> Result<CompactReport, CompactError> {
    let repo_id = opts.dataset.clone();
    let hub = |source| CompactError::Hub { repo: repo_id.clone(), source };
    for _ in 0..ATTEMPTS {
        let main = Repo::dataset(repo_id.clone());
        let head = client.repo_info(&main).map_err(hub)?.sha;
        let plan = plan(client, &main.clone().at_revision(head.clone()), opts)?;
        let mut report = CompactReport {
            merged_files: plan.delete.len(),
            written_files: plan.add.len() - usize::from(plan.card),
            records: plan.records,
            card_written: plan.card,
            files_after: plan.files_after,
            largest_folder: plan.largest_folder,
            commit: None,
        };
        if plan.add.is_empty() && plan.delete.is_empty() {
            return Ok(report);
        }
        let summary = format!(
            "Compact {} shards into {} daily files{}",
            report.merged_files,
            report.written_files,
            if plan.card { "; dataset card" } else { "" }
        );
        let commit = Commit { summary: &summary, add: &plan.add, delete: &plan.delete, parent: Some(&head) };
        match client.commit(&main, &commit) {
            Ok(info) => {
                report.commit = Some(info.commit_oid);
                return Ok(report);
            }
            Err(e) if e.is_conflict() => {
                tracing::info!("{repo_id} moved on during the compaction (a server synced); starting over");
            }
            Err(e) => return Err(hub(e)),
        }
    }
    Err(CompactError::Busy { repo: repo_id })
}

fn plan(client: &HubClient, at: &Repo, opts: &CompactOptions) -> Result<Planned, CompactError> {
    let repo_id = &opts.dataset;
    let hub = |source| CompactError::Hub { repo: repo_id.clone(), source };
    let tree = match client.list_tree(at, "", true) {
        Ok(t) => t,
        Err(e) => return Err(hub(e)),
    };
    // instance → its files by first segment number.
    let mut instances: BTreeMap<String, BTreeMap<u64, (LogFile, String)>> = BTreeMap::new();
    let mut data_files = 0;
    let mut has_card = None;
    for e in tree.iter().filter(|e| e.kind == "file") {
        if e.path == card::CARD_FILE {
            has_card = Some(e.path.clone());
        }
        if e.path.ends_with(".jsonl") && e.path.starts_with("data/") {
            data_files += 1;
        }
        let parts: Vec<&str> = e.path.split('/').collect();
        if let ["data", instance, name] = parts[..] {
            if let Some(f) = LogFile::parse(name) {
                instances.entry(instance.to_string()).or_default().insert(f.first(), (f, e.path.clone()));
            }
        }
    }
    let want_card = card::dataset_card(&opts.labels);
    let card = match has_card {
        None => true,
        Some(p) => client.download(at, &p).map_err(hub)? != want_card.as_bytes(),
    };
    let mut planned =
        Planned { add: Vec::new(), delete: Vec::new(), records: 0, card, files_after: 0, largest_folder: 0 };
    let mut folders: BTreeMap<String, usize> = BTreeMap::new();
    for (instance, files) in &instances {
        let newest = files.values().map(|(f, _)| f.last()).max().unwrap_or(0);
        // Consecutive members of one day, each with its bytes.
        let mut group: Vec<(LogFile, String, Vec<u8>)> = Vec::new();
        let mut group_day = String::new();
        let mut groups: Vec<Vec<(LogFile, String, Vec<u8>)>> = Vec::new();
        let mut previous: Option<(LogFile, String)> = None;
        for (file, path) in files.values() {
            let eligible_shard = matches!(file, LogFile::Shard(n) if *n != newest);
            let mut member = None;
            if eligible_shard {
                let bytes = client.download(at, path).map_err(hub)?;
                let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
                match day_of(first) {
                    Some((day, end)) if opts.now.duration_since(end).is_ok_and(|ago| ago >= opts.min_age) => {
                        member = Some((day, bytes));
                    }
                    Some(_) => {}
                    None => tracing::warn!("{path}: its first line has no received_at; left as it is"),
                }
            }
            match member {
                Some((day, bytes)) => {
                    let continues =
                        group.last().is_some_and(|(f, _, _)| f.last() + 1 == file.first()) && day == group_day;
                    if !continues {
                        groups.push(std::mem::take(&mut group));
                        // A range file just before, of the same day, takes this shard in.
                        if let Some((prev, prev_path)) = &previous {
                            if matches!(prev, LogFile::Range(..)) && prev.last() + 1 == file.first() {
                                let prev_bytes = client.download(at, prev_path).map_err(hub)?;
                                let first = prev_bytes.split(|&b| b == b'\n').next().unwrap_or_default();
                                if day_of(first).is_some_and(|(d, _)| d == day) {
                                    group.push((*prev, prev_path.clone(), prev_bytes));
                                }
                            }
                        }
                        group_day = day;
                    }
                    group.push((*file, path.clone(), bytes));
                }
                None => groups.push(std::mem::take(&mut group)),
            }
            previous = Some((*file, path.clone()));
        }
        groups.push(group);
        let mut kept = files.len();
        for g in groups.into_iter().filter(|g| g.len() >= 2) {
            let (first, last) = (g[0].0.first(), g[g.len() - 1].0.last());
            let mut content = Vec::new();
            for (_, path, bytes) in &g {
                if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                    return Err(CompactError::Torn { repo: repo_id.clone(), path: path.clone() });
                }
                planned.records += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                content.extend_from_slice(bytes);
                planned.delete.push(path.clone());
            }
            let path = format!("data/{instance}/{}", LogFile::Range(first, last));
            planned.add.push(AddFile { path, content });
            kept = kept + 1 - g.len();
        }
        folders.insert(instance.clone(), kept);
    }
    if card {
        planned.add.push(AddFile { path: card::CARD_FILE.into(), content: want_card.into_bytes() });
    }
    planned.files_after = data_files + planned.add.len() - usize::from(card) - planned.delete.len();
    planned.largest_folder = folders.values().copied().max().unwrap_or(0);
    Ok(planned)
}
