//! Sync of sealed log segments to the Hub logs dataset as `data/<instance-id>/<segment>.jsonl`.
//!
//! Each round seals the active segment (if it holds records), then commits every sealed segment
//! that the local sync state does not list, several files per commit. Before sending, it lists
//! `data/<instance-id>/` on the Hub: a file already there with the same bytes (a commit whose
//! answer was lost, or a crash before the state was saved) is recorded as synced, not sent
//! again. Paths are deterministic and include the instance id, so replicas never collide and a
//! file is never written twice. Failures are retried with exponential backoff.

use super::{FeedbackLog, LogError, SegmentInfo};
use hub::{AddFile, HubClient, HubError, Repo};
use serde::{Deserialize, Serialize};
use shared::{sha256_hex, Clock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const STATE_FILE: &str = "sync-state.json";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} already exists in the dataset with different content; not overwriting it")]
    Conflict { path: String },
    #[error("sync state {path} is unreadable: {reason}")]
    State { path: PathBuf, reason: String },
}

impl SyncError {
    fn is_retryable(&self) -> bool {
        match self {
            SyncError::Hub(e) => e.is_retryable(),
            SyncError::Io { .. } => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub repo: Repo,
    /// Unique per replica; the dataset folder name.
    pub instance_id: String,
    /// Seal and sync at least this often.
    pub every: Duration,
    /// Sync early once the active segment has this many records.
    pub max_records: u64,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub files_per_commit: usize,
    /// Bound on the last attempt at shutdown.
    pub final_attempt: Duration,
    /// Stamps the last success (`/healthz`, `/metrics`).
    pub clock: Clock,
}

impl SyncConfig {
    pub fn new(repo: Repo, instance_id: String, every: Duration) -> Self {
        SyncConfig {
            repo,
            instance_id,
            every,
            max_records: 10_000,
            retry_min: Duration::from_secs(2),
            retry_max: every.max(Duration::from_secs(2)),
            files_per_commit: 50,
            final_attempt: Duration::from_secs(30),
            clock: Clock::system(),
        }
    }

    /// `data/<instance-id>/<segment>`
    pub fn remote_path(&self, segment: &str) -> String {
        format!("data/{}/{segment}", self.instance_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SyncedFile {
    sha256: String,
    records: u64,
    commit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SyncState {
    repo: String,
    instance_id: String,
    synced: BTreeMap<String, SyncedFile>,
}

/// What the metrics and health endpoints show about sync.
#[derive(Debug, Default)]
pub struct SyncStatus {
    pub enabled: bool,
    /// Segment name → records, for segments in the dataset.
    synced: Mutex<BTreeMap<String, u64>>,
    pub failures: AtomicU64,
    pub commits: AtomicU64,
    pub last_success_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

impl SyncStatus {
    pub fn disabled() -> Arc<Self> {
        Arc::new(SyncStatus::default())
    }

    pub fn enabled() -> Arc<Self> {
        Arc::new(SyncStatus { enabled: true, ..Default::default() })
    }

    /// (records synced, records pending) over `segments`.
    pub fn split_records(&self, segments: &[SegmentInfo]) -> (u64, u64) {
        let synced = self.synced.lock().expect("sync lock");
        segments.iter().fold((0, 0), |(s, p), seg| {
            if synced.contains_key(&seg.name) {
                (s + seg.records, p)
            } else {
                (s, p + seg.records)
            }
        })
    }

    /// Short JSON for `/healthz`.
    pub fn summary(&self) -> serde_json::Value {
        if !self.enabled {
            return serde_json::json!("off");
        }
        serde_json::json!({
            "last_success_ms": self.last_success_ms.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "last_error": self.last_error.lock().expect("sync lock").clone(),
        })
    }
}

/// The sync loop and its state.
pub struct Syncer {
    log: FeedbackLog,
    client: HubClient,
    config: SyncConfig,
    status: Arc<SyncStatus>,
    state_path: PathBuf,
    state: SyncState,
}

impl Syncer {
    /// Loads `<data_dir>/sync-state.json` (a state for another repo or instance is ignored).
    pub fn new(
        log: FeedbackLog,
        client: HubClient,
        config: SyncConfig,
        status: Arc<SyncStatus>,
        data_dir: &Path,
    ) -> Result<Self, SyncError> {
        let state_path = data_dir.join(STATE_FILE);
        let fresh = SyncState {
            repo: config.repo.id.to_string(),
            instance_id: config.instance_id.clone(),
            ..Default::default()
        };
        let state = match std::fs::read(&state_path) {
            Ok(bytes) => {
                let s: SyncState = serde_json::from_slice(&bytes)
                    .map_err(|e| SyncError::State { path: state_path.clone(), reason: e.to_string() })?;
                if s.repo == fresh.repo && s.instance_id == fresh.instance_id {
                    s
                } else {
                    fresh
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(e) => return Err(SyncError::Io { action: "read", path: state_path, source: e }),
        };
        *status.synced.lock().expect("sync lock") = state.synced.iter().map(|(k, v)| (k.clone(), v.records)).collect();
        Ok(Syncer { log, client, config, status, state_path, state })
    }

    /// Runs until `shutdown` turns true, then makes one last bounded attempt.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let tick = self.config.every.min(Duration::from_millis(500)).max(Duration::from_millis(10));
        let mut next_round = Instant::now() + self.config.every;
        let mut backoff = self.config.retry_min;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            let full = self.log.segments().last().is_some_and(|s| s.records >= self.config.max_records);
            if Instant::now() < next_round && !full {
                continue;
            }
            match self.round().await {
                Ok(()) => {
                    backoff = self.config.retry_min;
                    next_round = Instant::now() + self.config.every;
                }
                Err(e) => {
                    let retry = e.is_retryable();
                    self.record_failure(&e);
                    let wait = if retry { backoff } else { self.config.every };
                    backoff = (backoff * 2).min(self.config.retry_max);
                    next_round = Instant::now() + jitter(wait);
                }
            }
        }
        match tokio::time::timeout(self.config.final_attempt, self.round()).await {
            Ok(Ok(())) => tracing::info!("final sync done"),
            Ok(Err(e)) => {
                self.record_failure(&e);
                tracing::warn!(error = %e, "final sync failed; the next start will send what is left");
            }
            Err(_) => tracing::warn!("final sync timed out; the next start will send what is left"),
        }
    }

    fn record_failure(&self, e: &SyncError) {
        self.status.failures.fetch_add(1, Ordering::Relaxed);
        *self.status.last_error.lock().expect("sync lock") = Some(e.to_string());
        tracing::warn!(error = %e, "sync attempt failed");
    }

    /// One sync round: seal, reconcile with the dataset, commit what is missing.
    pub async fn round(&mut self) -> Result<(), SyncError> {
        match self.log.roll().await {
            Ok(_) | Err(LogError::Closed) => {}
            Err(e) => return Err(e.into()),
        }
        let pending: Vec<SegmentInfo> = self
            .log
            .segments()
            .into_iter()
            .filter(|s| s.sealed && s.records > 0 && !self.state.synced.contains_key(&s.name))
            .collect();
        if pending.is_empty() {
            self.mark_success();
            return Ok(());
        }
        let client = self.client.clone();
        let repo = self.config.repo.clone();
        let folder = format!("data/{}", self.config.instance_id);
        let remote = tokio::task::spawn_blocking(move || match client.list_tree(&repo, &folder, true) {
            Ok(entries) => Ok(entries),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        })
        .await
        .expect("listing task")?;

        let mut to_send = Vec::new();
        for seg in pending {
            let content = std::fs::read(&seg.path).map_err(|e| SyncError::Io {
                action: "read",
                path: seg.path.clone(),
                source: e,
            })?;
            let path = self.config.remote_path(&seg.name);
            let sha = sha256_hex(&content);
            if remote.iter().any(|e| e.path == path) {
                let client = self.client.clone();
                let repo = self.config.repo.clone();
                let p = path.clone();
                let theirs =
                    tokio::task::spawn_blocking(move || client.download(&repo, &p)).await.expect("download task")?;
                if sha256_hex(&theirs) != sha {
                    return Err(SyncError::Conflict { path });
                }
                tracing::info!(%path, "already in the dataset (earlier commit); recording it as synced");
                self.state
                    .synced
                    .insert(seg.name.clone(), SyncedFile { sha256: sha, records: seg.records, commit: None });
                self.save_state()?;
                continue;
            }
            to_send.push((seg, path, content, sha));
        }

        for chunk in to_send.chunks(self.config.files_per_commit.max(1)) {
            let records: u64 = chunk.iter().map(|c| c.0.records).sum();
            let files: Vec<AddFile> = chunk
                .iter()
                .map(|(_, path, content, _)| AddFile { path: path.clone(), content: content.clone() })
                .collect();
            let summary =
                format!("feedback: {} segment(s), {records} record(s) from {}", files.len(), self.config.instance_id);
            let client = self.client.clone();
            let repo = self.config.repo.clone();
            let info = tokio::task::spawn_blocking(move || client.upload_files(&repo, &files, &summary))
                .await
                .expect("commit task")?;
            self.status.commits.fetch_add(1, Ordering::Relaxed);
            for (seg, path, _, sha) in chunk {
                tracing::info!(%path, records = seg.records, commit = %info.commit_oid, "segment committed");
                self.state.synced.insert(
                    seg.name.clone(),
                    SyncedFile { sha256: sha.clone(), records: seg.records, commit: Some(info.commit_oid.clone()) },
                );
            }
            self.save_state()?;
        }
        self.mark_success();
        Ok(())
    }

    fn mark_success(&self) {
        *self.status.synced.lock().expect("sync lock") =
            self.state.synced.iter().map(|(k, v)| (k.clone(), v.records)).collect();
        self.status.last_success_ms.store(self.config.clock.now_ms(), Ordering::Relaxed);
        *self.status.last_error.lock().expect("sync lock") = None;
    }

    /// Writes the state durably: temp file, fsync, rename, fsync of the directory.
    fn save_state(&self) -> Result<(), SyncError> {
        use std::io::Write;
        let tmp = self.state_path.with_extension("json.tmp");
        let io = |action, e| SyncError::Io { action, path: tmp.clone(), source: e };
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
        f.write_all(&serde_json::to_vec_pretty(&self.state).expect("json")).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("fsync", e))?;
        std::fs::rename(&tmp, &self.state_path).map_err(|e| io("rename", e))?;
        if let Some(dir) = self.state_path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("fsync dir of", e))?;
        }
        *self.status.synced.lock().expect("sync lock") =
            self.state.synced.iter().map(|(k, v)| (k.clone(), v.records)).collect();
        Ok(())
    }
}

/// Up to +25 % random extra wait, so replicas do not retry in step.
fn jitter(d: Duration) -> Duration {
    d + d.mul_f64(rand::random::<f64>() * 0.25)
}

/// The instance id in `<data_dir>/instance-id`, created (random) on first use.
pub fn instance_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => {
            std::fs::create_dir_all(data_dir)?;
            let id = format!("i-{:016x}", rand::random::<u64>());
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &id)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
    }
}
