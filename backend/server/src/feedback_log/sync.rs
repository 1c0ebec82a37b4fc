//! Sync of sealed log segments to the Hub logs dataset as `data/<folder>/<segment>.jsonl`, where
//! the folder is the instance id (or, after a conflict, the instance id and a generation).
//!
//! Each round seals the active segment (if it holds records), then commits every sealed segment
//! that the local sync state does not list, streamed: a commit takes at most
//! `files_per_commit` files and `max_commit_bytes` bytes (one larger segment goes alone), is
//! read from disk just before it is sent, has its own timeout, and is recorded as soon as it
//! lands, so a long outage's backlog goes out in steps that each can succeed. Before sending, it
//! lists the folder on the Hub: a file already there with the same bytes (a commit whose answer
//! was lost, or a crash before the state was saved) is recorded as synced, not sent again; so is
//! a segment inside a range file `<a>-<b>.jsonl` (a <= N <= b) with its bytes, which compaction
//! (`sentiment-trainer compact`) writes in place of the shards it replaces. The server itself
//! only ever adds `<NNNNNNNN>.jsonl` files and never deletes. A file there with other bytes (two replicas sharing an instance id, a data dir reset) is never
//! overwritten: this replica moves to a fresh folder `<instance-id>-g<random>` (kept in the
//! sync state), says so in its log, and goes on. Failures are retried with exponential backoff.

use super::{FeedbackLog, LogError, SegmentInfo};
use hub::{AddFile, HubClient, HubError, Repo};
use serde::{Deserialize, Serialize};
use shared::{sha256_hex, Clock};
use std::collections::{BTreeMap, HashSet};
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
    #[error("a commit of {files} file(s) did not finish within {timeout:?}")]
    CommitTimeout { files: usize, timeout: Duration },
    #[error("sync state {path} is unreadable: {reason}")]
    State { path: PathBuf, reason: String },
}

impl SyncError {
    fn is_retryable(&self) -> bool {
        match self {
            SyncError::Hub(e) => e.is_retryable(),
            SyncError::Io { .. } | SyncError::CommitTimeout { .. } => true,
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
    /// Most files in one commit.
    pub files_per_commit: usize,
    /// Most bytes of segments in one commit (a larger segment goes alone).
    pub max_commit_bytes: u64,
    /// Longest one commit (preupload, LFS uploads, the commit call) may take.
    pub commit_timeout: Duration,
    /// Bound on the last attempt at shutdown.
    pub final_attempt: Duration,
    /// Segments in the dataset whose last write is older than this leave the local disk (their
    /// ids stay in the on-disk dedup index); `None` keeps everything.
    pub retention: Option<Duration>,
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
            max_commit_bytes: 16 << 20,
            commit_timeout: Duration::from_secs(300),
            final_attempt: Duration::from_secs(30),
            retention: None,
            clock: Clock::system(),
        }
    }

    /// `data/<instance-id>/<segment>` (the first generation's path).
    pub fn remote_path(&self, segment: &str) -> String {
        format!("data/{}/{segment}", self.instance_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SyncedFile {
    sha256: String,
    records: u64,
    commit: Option<String>,
    /// Where it is in the dataset (absent in states written before generations existed: then
    /// `data/<instance-id>/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SyncState {
    repo: String,
    instance_id: String,
    /// Set after a conflict: new files go to `data/<instance-id>-g<generation>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<String>,
    synced: BTreeMap<String, SyncedFile>,
}

impl SyncState {
    /// The dataset folder new files go to.
    fn folder(&self) -> String {
        match &self.generation {
            None => format!("data/{}", self.instance_id),
            Some(g) => format!("data/{}-g{g}", self.instance_id),
        }
    }
}

/// What the metrics and health endpoints show about sync.
#[derive(Debug, Default)]
pub struct SyncStatus {
    pub enabled: bool,
    /// Segment name → records, for segments in the dataset.
    synced: Mutex<BTreeMap<String, u64>>,
    pub failures: AtomicU64,
    pub commits: AtomicU64,
    /// Conflicts that moved this replica to a fresh folder.
    pub conflicts: AtomicU64,
    pub last_success_ms: AtomicI64,
    /// When the current run of failures began (ms since the epoch; 0 = not failing).
    failing_since_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

impl SyncStatus {
    pub fn disabled() -> Arc<Self> {
        Arc::new(SyncStatus::default())
    }

    pub fn enabled() -> Arc<Self> {
        Arc::new(SyncStatus { enabled: true, ..Default::default() })
    }

    /// The records of `segments` not yet in the dataset: (records, bytes, `received_at` of the
    /// oldest in ms).
    pub fn backlog(&self, segments: &[SegmentInfo]) -> (u64, u64, Option<i64>) {
        let synced = self.synced.lock().expect("sync lock");
        segments.iter().filter(|s| s.records > 0 && !synced.contains_key(&s.name)).fold(
            (0, 0, None),
            |(r, b, oldest): (u64, u64, Option<i64>), seg| {
                let first = match (oldest, seg.first_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (r + seg.records, b + seg.bytes, first)
            },
        )
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

    /// How long sync has been failing without a success in between (0 when it is not).
    pub fn failing_for_ms(&self, now_ms: i64) -> i64 {
        match self.failing_since_ms.load(Ordering::Relaxed) {
            0 => 0,
            since => (now_ms - since).max(0),
        }
    }

    /// The last attempt's error, while sync is failing.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("sync lock").clone()
    }

    /// Notes a failed attempt at `now_ms`.
    pub fn note_failure(&self, now_ms: i64, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let _ = self.failing_since_ms.compare_exchange(0, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed);
        *self.last_error.lock().expect("sync lock") = Some(error);
    }

    /// Notes a successful round at `now_ms`.
    pub fn note_success(&self, now_ms: i64) {
        self.last_success_ms.store(now_ms, Ordering::Relaxed);
        self.failing_since_ms.store(0, Ordering::Relaxed);
        *self.last_error.lock().expect("sync lock") = None;
    }

    /// Everything about sync, for the operator only (`/healthz/details`): errors name Hub URLs.
    pub fn details(&self) -> serde_json::Value {
        if !self.enabled {
            return serde_json::json!("off");
        }
        serde_json::json!({
            "last_success_ms": self.last_success_ms.load(Ordering::Relaxed),
            "failing_since_ms": self.failing_since_ms.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "commits": self.commits.load(Ordering::Relaxed),
            "conflicts": self.conflicts.load(Ordering::Relaxed),
            "last_error": self.last_error(),
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
        self.status.note_failure(self.config.clock.now_ms(), e.to_string());
        tracing::warn!(error = %e, "sync attempt failed");
    }

    /// One sync round: seal, reconcile with the dataset, commit what is missing; then retire
    /// what is in the dataset and older than the retention window.
    pub async fn round(&mut self) -> Result<(), SyncError> {
        self.send_pending().await?;
        self.retire_old().await;
        Ok(())
    }

    /// Retention (see [`FeedbackLog::retire`]): only segments this replica knows are in the
    /// dataset. A failure keeps them on disk and is retried after the next round.
    async fn retire_old(&self) {
        let Some(window) = self.config.retention else { return };
        let Some(before) = std::time::SystemTime::now().checked_sub(window) else { return };
        let synced: HashSet<String> = self.state.synced.keys().cloned().collect();
        match self.log.retire(before, &synced).await {
            Ok(0) | Err(LogError::Closed) => {}
            Ok(records) => {
                tracing::info!(records, window = %humantime::format_duration(window), "retention: synced records older than the window left the disk")
            }
            Err(e) => tracing::warn!(error = %e, "retention failed; the segments stay on disk for now"),
        }
    }

    async fn send_pending(&mut self) -> Result<(), SyncError> {
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
        let mut remote = self.list_folder().await?;
        let mut batch: Vec<(SegmentInfo, AddFile, String)> = Vec::new();
        let mut batch_bytes = 0u64;
        for seg in pending {
            let mut path = format!("{}/{}", self.state.folder(), seg.name);
            match self.look_up(&seg, &remote).await? {
                InDataset::No => {}
                InDataset::Same(there) => {
                    tracing::info!(path = %there, segment = %seg.name, "already in the dataset (earlier commit); recording it as synced");
                    let sha = sha256_hex(&read_segment(&seg)?);
                    self.state.synced.insert(
                        seg.name.clone(),
                        SyncedFile { sha256: sha, records: seg.records, commit: None, path: Some(there) },
                    );
                    self.save_state()?;
                    continue;
                }
                InDataset::Other(there) => {
                    self.new_generation(&there)?;
                    remote = self.list_folder().await?;
                    path = format!("{}/{}", self.state.folder(), seg.name);
                }
            }
            let full = batch.len() >= self.config.files_per_commit.max(1)
                || batch_bytes + seg.bytes > self.config.max_commit_bytes;
            if !batch.is_empty() && full {
                self.commit(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            // Read at the last moment: at most one commit's worth of segments is in memory.
            let content = read_segment(&seg)?;
            batch_bytes += content.len() as u64;
            let sha = sha256_hex(&content);
            batch.push((seg, AddFile { path, content }, sha));
        }
        if !batch.is_empty() {
            self.commit(batch).await?;
        }
        self.mark_success();
        Ok(())
    }

    /// Whether `seg` is already in this replica's folder of the dataset: as `<N>.jsonl`, or inside
    /// a range file `<a>-<b>.jsonl` (a <= N <= b) that compaction (`sentiment-trainer compact`)
    /// made from the shards it replaced. Either is compared with the segment's bytes: a range
    /// file holds the shards concatenated, so the segment must be in it from a line start.
    /// Other content there (two replicas with one instance id, a data dir reset) is
    /// [`InDataset::Other`], never counted as synced: that would drop this segment's records.
    async fn look_up(&self, seg: &SegmentInfo, remote: &HashSet<String>) -> Result<InDataset, SyncError> {
        let folder = self.state.folder();
        let path = format!("{folder}/{}", seg.name);
        let (there, whole) = if remote.contains(&path) {
            (path, true)
        } else {
            match remote.iter().filter(|p| range_covers(p, &folder, seg.seq)).min() {
                Some(range) => (range.clone(), false),
                None => return Ok(InDataset::No),
            }
        };
        let mine = read_segment(seg)?;
        let (client, repo, p) = (self.client.clone(), self.config.repo.clone(), there.clone());
        let theirs = tokio::task::spawn_blocking(move || client.download(&repo, &p)).await.expect("download task")?;
        let same = if whole { theirs == mine } else { holds_at_line_start(&theirs, &mine) };
        Ok(if same { InDataset::Same(there) } else { InDataset::Other(there) })
    }

    /// Paths of the files now in this replica's folder of the dataset.
    async fn list_folder(&self) -> Result<HashSet<String>, SyncError> {
        let (client, repo, folder) = (self.client.clone(), self.config.repo.clone(), self.state.folder());
        let entries = tokio::task::spawn_blocking(move || match client.list_tree(&repo, &folder, true) {
            Ok(entries) => Ok(entries),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        })
        .await
        .expect("listing task")?;
        Ok(entries.into_iter().filter(|e| e.kind == "file").map(|e| e.path).collect())
    }

    /// Moves this replica to a fresh folder after finding other content at `path`.
    fn new_generation(&mut self, path: &str) -> Result<(), SyncError> {
        let generation = format!("{:08x}", rand::random::<u32>());
        let old = self.state.folder();
        self.state.generation = Some(generation);
        self.save_state()?;
        self.status.conflicts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            conflict = %path,
            from = %old,
            to = %self.state.folder(),
            "a file at this replica's path in the dataset holds other records (two replicas with \
             one instance id, or a data dir that was reset); it is left as it is, and this replica \
             now writes to a fresh folder"
        );
        Ok(())
    }

    /// Commits one batch under its own timeout and records it.
    async fn commit(&mut self, batch: Vec<(SegmentInfo, AddFile, String)>) -> Result<(), SyncError> {
        let records: u64 = batch.iter().map(|(s, _, _)| s.records).sum();
        let files = batch.len();
        let summary = format!("feedback: {files} segment(s), {records} record(s) from {}", self.config.instance_id);
        let (client, repo) = (self.client.clone(), self.config.repo.clone());
        let (meta, adds): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|(seg, add, sha)| ((seg, add.path.clone(), sha), add)).unzip();
        let upload = tokio::task::spawn_blocking(move || client.upload_files(&repo, &adds, &summary));
        // On a timeout the blocking call may still finish later; the next round finds its files
        // in the dataset with the same bytes and records them, never sends them twice.
        let info = match tokio::time::timeout(self.config.commit_timeout, upload).await {
            Ok(joined) => joined.expect("commit task")?,
            Err(_) => return Err(SyncError::CommitTimeout { files, timeout: self.config.commit_timeout }),
        };
        self.status.commits.fetch_add(1, Ordering::Relaxed);
        for (seg, path, sha) in meta {
            tracing::info!(%path, records = seg.records, commit = %info.commit_oid, "segment committed");
            self.state.synced.insert(
                seg.name.clone(),
                SyncedFile {
                    sha256: sha,
                    records: seg.records,
                    commit: Some(info.commit_oid.clone()),
                    path: Some(path),
                },
            );
        }
        self.save_state()?;
        // Progress: a long backlog that goes out commit by commit is not a stalled sync.
        self.mark_success();
        Ok(())
    }

    fn mark_success(&self) {
        *self.status.synced.lock().expect("sync lock") =
            self.state.synced.iter().map(|(k, v)| (k.clone(), v.records)).collect();
        self.status.note_success(self.config.clock.now_ms());
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

/// Where a segment stands in the dataset (see [`Syncer::look_up`]).
enum InDataset {
    No,
    /// At this path, with the same bytes.
    Same(String),
    /// This path should hold it but holds other records.
    Other(String),
}

/// True when `path` is a range file `<folder>/<a>-<b>.jsonl` (8 digits each) with a <= seq <= b.
fn range_covers(path: &str, folder: &str, seq: u64) -> bool {
    let Some(name) = path.strip_prefix(folder).and_then(|p| p.strip_prefix('/')) else { return false };
    let Some((a, b)) = name.strip_suffix(".jsonl").and_then(|stem| stem.split_once('-')) else { return false };
    let number = |s: &str| (s.len() == 8 && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse::<u64>().ok())?;
    matches!((number(a), number(b)), (Some(a), Some(b)) if a <= seq && seq <= b)
}

/// True when `part` occurs in `whole` starting at the beginning or right after a newline.
fn holds_at_line_start(whole: &[u8], part: &[u8]) -> bool {
    if part.is_empty() || part.len() > whole.len() {
        return false;
    }
    let starts = std::iter::once(0).chain(whole.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1));
    starts.take_while(|&i| i + part.len() <= whole.len()).any(|i| &whole[i..i + part.len()] == part)
}

fn read_segment(seg: &SegmentInfo) -> Result<Vec<u8>, SyncError> {
    std::fs::read(&seg.path).map_err(|e| SyncError::Io { action: "read", path: seg.path.clone(), source: e })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_files_cover_their_segments_only() {
        let f = "data/i-a";
        assert!(range_covers("data/i-a/00000003-00000007.jsonl", f, 3));
        assert!(range_covers("data/i-a/00000003-00000007.jsonl", f, 7));
        assert!(!range_covers("data/i-a/00000003-00000007.jsonl", f, 8));
        assert!(!range_covers("data/i-a/00000003-00000007.jsonl", f, 2));
        assert!(!range_covers("data/i-a/00000003.jsonl", f, 3), "a shard is not a range");
        assert!(!range_covers("data/i-b/00000001-00000009.jsonl", f, 3), "another replica's folder");
        assert!(!range_covers("data/i-a-g1/00000001-00000009.jsonl", f, 3));
        assert!(!range_covers("data/i-a/sub/00000001-00000009.jsonl", f, 3));
        assert!(!range_covers("data/i-a/3-7.jsonl", f, 3));
        assert!(!range_covers("data/i-a/00000007-00000003.jsonl", f, 5));
    }

    #[test]
    fn a_segment_is_in_a_range_file_only_from_a_line_start() {
        let whole = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        assert!(holds_at_line_start(whole, b"{\"a\":1}\n"));
        assert!(holds_at_line_start(whole, b"{\"b\":2}\n{\"c\":3}\n"));
        assert!(!holds_at_line_start(whole, b"\"b\":2}\n"), "not from a line start");
        assert!(!holds_at_line_start(whole, b"{\"d\":4}\n"));
        assert!(!holds_at_line_start(whole, b""));
        assert!(!holds_at_line_start(b"{\"a\":1}\n", b"{\"a\":1}\n{\"b\":2}\n"));
    }
}
