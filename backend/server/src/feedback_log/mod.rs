//! The durable local feedback log: append-only JSONL segments in `<data-dir>/segments/`.
//!
//! One writer thread owns the active segment. Requests hand it records through a channel; it
//! takes everything queued, writes it in one `write`, calls `fsync` once and only then answers
//! every request of the batch (group commit), then adds the batch to the running
//! [`aggregates`] that stats and metrics read. On open, all segments are replayed, a torn last
//! line in the newest one is cut away, and the id index and the aggregates are rebuilt.
//! [`sync`] commits sealed segments to the Hub logs dataset; once a segment is there and older
//! than the retention window, [`FeedbackLog::retire`] moves its ids to the on-disk
//! [`dedup_index`] and deletes it, so memory, disk and start time follow the window, not the
//! whole history.

pub mod aggregates;
pub mod dedup_index;
pub mod disk;
mod segment;
pub mod sync;
mod writer;

pub use segment::{segment_name, SegmentInfo, SEGMENTS_DIR};

use aggregates::{Aggregates, Agreement, Counts};
use shared::feedback::parse_timestamp_millis;
use shared::feedback::FeedbackStats;
use shared::{FeedbackRecord, FeedbackSubmission};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} line {line} is damaged ({reason}) and is not a torn last write; refusing to guess")]
    Corrupt { path: PathBuf, line: u64, reason: String },
    #[error("data dir {0} is in use by another sentiment-server process")]
    Locked(PathBuf),
    #[error("the write queue is full")]
    Busy,
    #[error("the log is shut down")]
    Closed,
    #[error("the log could not write and is stopped: {0}")]
    Broken(String),
}

impl LogError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        LogError::Io { action, path: path.to_owned(), source }
    }
}

/// Where and how the log writes.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub data_dir: PathBuf,
    /// What segments are written through: the real file system, or a test's.
    pub disk: Arc<dyn disk::Disk>,
    /// Roll to a new segment once the active one has this many bytes.
    pub max_segment_bytes: u64,
    /// Requests waiting for the writer before new ones are refused (load shedding).
    pub queue_capacity: usize,
}

impl LogConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            data_dir: data_dir.into(),
            disk: Arc::new(disk::OsDisk),
            max_segment_bytes: 8 << 20,
            queue_capacity: 8192,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Newly written and fsync'd.
    Stored(FeedbackRecord),
    /// The same submission was stored before; this is the stored record (first `received_at`).
    Existing(FeedbackRecord),
    /// The id was stored before with a different body.
    Conflict,
}

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Records in the local log (replayed + appended).
    pub records: AtomicU64,
    /// Records appended since start.
    pub appended: AtomicU64,
    /// Appends answered from the index (retries).
    pub duplicates: AtomicU64,
    /// fsync'd batches since start.
    pub batches: AtomicU64,
    /// Bytes cut from a torn tail at start.
    pub cut_bytes: AtomicU64,
    /// Records whose segments left the disk (retention) since start.
    pub retired: AtomicU64,
}

pub(crate) enum Command {
    Append {
        record: FeedbackRecord,
        fingerprint: u64,
        reply: oneshot::Sender<Result<Appended, LogError>>,
    },
    /// Seal the active segment if it holds records.
    Roll {
        reply: oneshot::Sender<Result<bool, LogError>>,
    },
    /// Forget these sealed segments (their ids are in the on-disk index now) and delete them.
    Retire {
        seqs: Vec<u64>,
        keys: Vec<u128>,
        /// The index with their ids, opened outside the writer.
        dedup: dedup_index::DedupIndex,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// Seal the active segment if it holds records, then stop.
    Shutdown {
        reply: oneshot::Sender<Result<(), LogError>>,
    },
}

pub(crate) struct Shared {
    aggregates: Mutex<Aggregates>,
    segments: Mutex<Vec<SegmentInfo>>,
    pub(crate) counters: LogCounters,
    broken: AtomicBool,
    /// One retirement at a time (it rewrites the on-disk index).
    retiring: tokio::sync::Mutex<()>,
}

/// Segments retired by one [`FeedbackLog::retire`] call (8 MiB segments: about 2 million ids,
/// 64 MB while they are merged).
pub const MAX_SEGMENTS_PER_RETIREMENT: usize = 64;

/// Handle to the log; cheap to clone.
#[derive(Clone)]
pub struct FeedbackLog {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    dir: PathBuf,
    data_dir: PathBuf,
}

/// Deterministic 64-bit fingerprint of a submission (for telling a retry from a conflict).
pub fn fingerprint(sub: &FeedbackSubmission) -> u64 {
    use sha2::Digest;
    let json = serde_json::to_vec(sub).expect("a submission always serializes");
    let d = sha2::Sha256::digest(&json);
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The UUID as a number, ignoring case and dashes; `None` if it is not a UUID.
pub fn id_key(id: &str) -> Option<u128> {
    if !shared::feedback::is_uuid(id) {
        return None;
    }
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    u128::from_str_radix(&hex, 16).ok()
}

impl FeedbackLog {
    /// Opens (or creates) the log in `config.data_dir`, replays it and starts the writer thread.
    pub fn open(config: LogConfig) -> Result<FeedbackLog, LogError> {
        let dir = config.data_dir.join(SEGMENTS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io("create", &dir, e))?;
        let lock = lock_data_dir(&config.data_dir)?;
        let mut aggregates = Aggregates::default();
        let opened = writer::recover(&*config.disk, &dir, |rec| add_to(&mut aggregates, rec))?;
        let counters = LogCounters::default();
        counters.records.store(opened.index.len() as u64, Ordering::Relaxed);
        counters.cut_bytes.store(opened.cut_bytes, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            aggregates: Mutex::new(aggregates),
            segments: Mutex::new(opened.segments.clone()),
            counters,
            broken: AtomicBool::new(false),
            retiring: tokio::sync::Mutex::new(()),
        });
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let state = writer::WriterState::new(
            config.disk.clone(),
            dir.clone(),
            &config.data_dir,
            config.max_segment_bytes,
            opened,
            shared.clone(),
            lock,
        )?;
        std::thread::Builder::new()
            .name("feedback-log-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| LogError::io("spawn writer for", &dir, e))?;
        Ok(FeedbackLog { tx, shared, dir, data_dir: config.data_dir })
    }

    /// The data dir (segments, sync state, instance id, lock).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory of the segment files.
    pub fn segments_dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `record` unless its id is already stored; answers once the record is on disk.
    pub async fn append(&self, record: FeedbackRecord) -> Result<Appended, LogError> {
        let fingerprint = fingerprint(&record.submission);
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Command::Append { record, fingerprint, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LogError::Busy,
            mpsc::error::TrySendError::Closed(_) => LogError::Closed,
        })?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Seals the active segment if it holds any record; `true` if it did.
    pub async fn roll(&self) -> Result<bool, LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Roll { reply }).await.map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Seals the active segment and stops the writer; later appends fail with `Closed`. When it
    /// returns, the data dir's lock is released (another `open` may follow at once).
    pub async fn shutdown(&self) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reply }).await.is_err() {
            return Ok(()); // already stopped
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// Retention: the sealed segments named in `synced` (in the Hub dataset) whose last write is
    /// before `before` leave the disk. Their ids go first into the on-disk [`dedup_index`]
    /// (merged outside the writer, which keeps taking records), then the writer forgets them
    /// and deletes the files. A crash in between leaves the segments, whose ids the index also
    /// holds: replayed again, retired again. At most [`MAX_SEGMENTS_PER_RETIREMENT`] segments a
    /// call, so the ids held while merging stay bounded (a long history, e.g. after an upgrade,
    /// goes over several sync rounds). Returns the records retired.
    pub async fn retire(
        &self,
        before: std::time::SystemTime,
        synced: &std::collections::HashSet<String>,
    ) -> Result<u64, LogError> {
        let _one = self.shared.retiring.lock().await;
        let candidates: Vec<SegmentInfo> = self
            .segments()
            .into_iter()
            .filter(|s| s.sealed && synced.contains(&s.name))
            .filter(|s| std::fs::metadata(&s.path).and_then(|m| m.modified()).is_ok_and(|t| t < before))
            .take(MAX_SEGMENTS_PER_RETIREMENT)
            .collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        let seqs: Vec<u64> = candidates.iter().map(|s| s.seq).collect();
        let data_dir = self.data_dir.clone();
        let (keys, records, dedup) = tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            let mut records = 0;
            for seg in &candidates {
                segment::replay(&seg.path, false, |rec| {
                    records += 1;
                    if let Some(key) = id_key(&rec.submission.id) {
                        let ms = parse_timestamp_millis(&rec.received_at).unwrap_or(0);
                        entries.push((key, fingerprint(&rec.submission), ms));
                    }
                })?;
            }
            let keys = entries.iter().map(|e| e.0).collect();
            let index = data_dir.join(dedup_index::DEDUP_INDEX_FILE);
            dedup_index::merge(&data_dir, entries).map_err(|e| LogError::io("write", &index, e))?;
            let dedup = dedup_index::DedupIndex::open(&data_dir).map_err(|e| LogError::io("open", &index, e))?;
            Ok::<_, LogError>((keys, records, dedup))
        })
        .await
        .expect("retire task")?;
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Retire { seqs, keys, dedup, reply }).await.map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)??;
        self.shared.counters.retired.fetch_add(records, Ordering::Relaxed);
        Ok(records)
    }

    /// Every segment, oldest first; all but the last are sealed.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.shared.segments.lock().expect("segments lock").clone()
    }

    pub fn counters(&self) -> &LogCounters {
        &self.shared.counters
    }

    /// False once a write failed and could not be undone.
    pub fn healthy(&self) -> bool {
        !self.shared.broken.load(Ordering::Relaxed) && !self.tx.is_closed()
    }

    /// Stats over the records received from the UTC hour `since_hour` on (hours since the
    /// epoch), optionally for one model version. Reads the running aggregates: the cost is
    /// bounded by the hours kept, never by the records stored.
    pub fn stats(&self, since_hour: Option<i64>, model_version: Option<&str>) -> FeedbackStats {
        self.shared.aggregates.lock().expect("aggregates lock").stats(since_hour, model_version)
    }

    /// Agreement per model version over the hours from `since_hour` on (bounded: see
    /// [`aggregates`]).
    pub fn agreement_since(&self, since_hour: i64) -> Vec<Agreement> {
        self.shared.aggregates.lock().expect("aggregates lock").agreement_since(since_hour)
    }

    /// Records by label over the log's whole life.
    pub fn all_time_counts(&self) -> Counts {
        self.shared.aggregates.lock().expect("aggregates lock").all_time().clone()
    }
}

pub(crate) fn add_to(aggregates: &mut Aggregates, rec: &FeedbackRecord) {
    let ms = parse_timestamp_millis(&rec.received_at).unwrap_or(0);
    let s = &rec.submission;
    aggregates.add(&s.label, &s.predicted, &s.model_version, ms);
}

/// Takes an exclusive `flock` on `<data-dir>/LOCK` so two processes never share one log.
fn lock_data_dir(data_dir: &Path) -> Result<File, LogError> {
    let path = data_dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("open", &path, e))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a valid, open descriptor that outlives the lock.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(LogError::Locked(data_dir.to_owned()));
        }
    }
    Ok(file)
}
