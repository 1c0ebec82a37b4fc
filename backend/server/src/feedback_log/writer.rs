//! Replay on open, and the writer thread that group-commits appends.

use super::dedup_index::{DedupIndex, DEDUP_INDEX_FILE};
use super::disk::{Disk, DiskFile};
use super::segment::{self, SegmentInfo};
use super::{id_key, Appended, Command, LogError, Shared};
use shared::feedback::{format_timestamp_millis, parse_timestamp_millis};
use shared::FeedbackRecord;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most commands taken into one batch (one write + one fsync).
const MAX_BATCH: usize = 4096;

/// id → (fingerprint, received_at in ms).
pub(crate) type Index = HashMap<u128, (u64, i64)>;

pub(crate) struct Opened {
    pub segments: Vec<SegmentInfo>,
    pub index: Index,
    pub cut_bytes: u64,
}

/// Replays every segment (cutting a torn tail of the newest), calling `on_record` once per
/// distinct id, and makes sure there is an active segment to append to.
pub(crate) fn recover(
    disk: &dyn Disk,
    dir: &Path,
    mut on_record: impl FnMut(&FeedbackRecord),
) -> Result<Opened, LogError> {
    let seqs = segment::list_segments(dir)?;
    let mut index = Index::new();
    let mut segments = Vec::with_capacity(seqs.len() + 1);
    let mut cut_bytes = 0;
    let mut duplicates = 0u64;
    for (i, &seq) in seqs.iter().enumerate() {
        let newest = i + 1 == seqs.len();
        let path = dir.join(segment::segment_name(seq));
        let mut first_ms = None;
        let replay = segment::replay(&path, newest, |rec| {
            if first_ms.is_none() {
                first_ms = parse_timestamp_millis(&rec.received_at);
            }
            let Some(key) = id_key(&rec.submission.id) else {
                return;
            };
            if index.contains_key(&key) {
                duplicates += 1;
                return;
            }
            let ms = parse_timestamp_millis(&rec.received_at).unwrap_or(0);
            index.insert(key, (super::fingerprint(&rec.submission), ms));
            on_record(&rec);
        })?;
        cut_bytes += replay.cut_bytes;
        segments.push(SegmentInfo {
            seq,
            name: segment::segment_name(seq),
            path,
            records: replay.records,
            bytes: replay.valid_len,
            sealed: !newest,
            first_ms,
        });
    }
    if duplicates > 0 {
        tracing::warn!(duplicates, "the log holds repeated ids; each id is counted once");
    }
    if segments.is_empty() {
        let (_, path) = segment::create_segment(disk, dir, 1)?;
        segments.push(SegmentInfo {
            seq: 1,
            name: segment::segment_name(1),
            path,
            records: 0,
            bytes: 0,
            sealed: false,
            first_ms: None,
        });
    }
    tracing::info!(records = index.len(), segments = segments.len(), cut_bytes, "feedback log replayed");
    Ok(Opened { segments, index, cut_bytes })
}

pub(crate) struct WriterState {
    dir: PathBuf,
    max_segment_bytes: u64,
    index: Index,
    /// Ids of retired segments (looked up when `index` does not know an id).
    dedup: DedupIndex,
    data_dir: PathBuf,
    disk: Arc<dyn Disk>,
    file: Box<dyn DiskFile>,
    active: SegmentInfo,
    shared: Arc<Shared>,
    /// The data dir's `flock`, released when the writer stops.
    lock: Option<File>,
    /// Answered after the writer has released everything.
    shutdown_reply: Option<tokio::sync::oneshot::Sender<Result<(), LogError>>>,
    shutdown_result: Result<(), LogError>,
}

impl WriterState {
    pub fn new(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        data_dir: &Path,
        max_segment_bytes: u64,
        opened: Opened,
        shared: Arc<Shared>,
        lock: File,
    ) -> Result<Self, LogError> {
        let active = opened.segments.last().expect("recover leaves an active segment").clone();
        let file = segment::open_for_append(&*disk, &active.path)?;
        let dedup =
            DedupIndex::open(data_dir).map_err(|e| LogError::io("open", &data_dir.join(DEDUP_INDEX_FILE), e))?;
        Ok(WriterState {
            dedup,
            data_dir: data_dir.to_owned(),
            disk,
            dir,
            max_segment_bytes,
            index: opened.index,
            file,
            active,
            shared,
            lock: Some(lock),
            shutdown_reply: None,
            shutdown_result: Ok(()),
        })
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            if self.process(batch) {
                break;
            }
        }
        rx.close();
        // Anything still queued gets `Closed` when its reply sender drops here.
        while let Ok(cmd) = rx.try_recv() {
            drop(cmd);
        }
        let reply = self.shutdown_reply.take();
        let result = std::mem::replace(&mut self.shutdown_result, Ok(()));
        // Release the segment file and the data dir's lock before answering `shutdown`.
        drop(self.lock.take());
        drop(self);
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    /// Handles one batch; `true` when the writer must stop.
    fn process(&mut self, batch: Vec<Command>) -> bool {
        let broken = self.shared.broken.load(Ordering::Relaxed);
        let mut buf = Vec::new();
        let mut new_keys = Vec::new();
        let mut replies = Vec::new();
        let mut control = Vec::new();
        for cmd in batch {
            match cmd {
                Command::Append { record, fingerprint, reply } => {
                    if broken {
                        let _ = reply.send(Err(LogError::Broken("an earlier write failed".into())));
                        continue;
                    }
                    let Some(key) = id_key(&record.submission.id) else {
                        let _ = reply.send(Ok(Appended::Conflict));
                        continue;
                    };
                    // Ids of retired segments are on disk: read only for ids not in memory.
                    let known = match self.index.get(&key) {
                        Some(&v) => Some(v),
                        None => match self.dedup.get(key) {
                            Ok(v) => v,
                            Err(e) => {
                                let path = self.data_dir.join(DEDUP_INDEX_FILE);
                                let _ = reply.send(Err(LogError::io("read", &path, e)));
                                continue;
                            }
                        },
                    };
                    let outcome = match known {
                        Some((fp, ms)) if fp == fingerprint => {
                            let received_at = format_timestamp_millis(ms);
                            Appended::Existing(FeedbackRecord {
                                submission: record.submission,
                                received_at,
                                client: None,
                            })
                        }
                        Some(_) => Appended::Conflict,
                        None => {
                            serde_json::to_writer(&mut buf, &record).expect("a record always serializes");
                            buf.push(b'\n');
                            let ms = parse_timestamp_millis(&record.received_at).unwrap_or(0);
                            self.index.insert(key, (fingerprint, ms));
                            new_keys.push(key);
                            Appended::Stored(record)
                        }
                    };
                    replies.push((reply, outcome));
                }
                other => control.push(other),
            }
        }

        if !buf.is_empty() {
            match self.write_durably(&buf) {
                Ok(()) => self.after_write(&buf, &replies, new_keys.len() as u64),
                Err(e) => {
                    tracing::error!(error = %e, records = new_keys.len(), "append failed; nothing of this batch is acknowledged");
                    for key in &new_keys {
                        self.index.remove(key);
                    }
                    self.undo_partial_write();
                    for (reply, _) in replies {
                        let _ = reply.send(Err(LogError::Broken(e.to_string())));
                    }
                    return self.handle_control(control);
                }
            }
        }
        let mut duplicates = 0;
        for (reply, outcome) in replies {
            duplicates += u64::from(matches!(outcome, Appended::Existing(_)));
            let _ = reply.send(Ok(outcome));
        }
        self.shared.counters.duplicates.fetch_add(duplicates, Ordering::Relaxed);

        if self.active.bytes >= self.max_segment_bytes {
            if let Err(e) = self.roll() {
                tracing::error!(error = %e, "cannot roll to a new segment");
            }
        }
        self.handle_control(control)
    }

    fn write_durably(&mut self, buf: &[u8]) -> Result<(), LogError> {
        let path = &self.active.path;
        self.file.write_all(buf).map_err(|e| LogError::io("write", path, e))?;
        self.file.sync_data().map_err(|e| LogError::io("fsync", path, e))
    }

    /// Cuts the segment back to its last acknowledged byte after a failed write.
    fn undo_partial_write(&mut self) {
        let undo = self.file.set_len(self.active.bytes).and_then(|_| self.file.sync_all());
        if let Err(e) = undo {
            tracing::error!(error = %e, path = %self.active.path.display(),
                "cannot cut a failed write; the log stops accepting records");
            self.shared.broken.store(true, Ordering::Relaxed);
        }
    }

    fn after_write(
        &mut self,
        buf: &[u8],
        replies: &[(tokio::sync::oneshot::Sender<Result<Appended, LogError>>, Appended)],
        new: u64,
    ) {
        self.active.bytes += buf.len() as u64;
        self.active.records += new;
        if self.active.first_ms.is_none() {
            self.active.first_ms = replies.iter().find_map(|(_, o)| match o {
                Appended::Stored(rec) => parse_timestamp_millis(&rec.received_at),
                _ => None,
            });
        }
        {
            let mut aggregates = self.shared.aggregates.lock().expect("aggregates lock");
            for (_, outcome) in replies {
                if let Appended::Stored(rec) = outcome {
                    super::add_to(&mut aggregates, rec);
                }
            }
        }
        self.publish_active();
        let c = &self.shared.counters;
        c.records.fetch_add(new, Ordering::Relaxed);
        c.appended.fetch_add(new, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
    }

    fn publish_active(&self) {
        let mut segs = self.shared.segments.lock().expect("segments lock");
        if let Some(last) = segs.last_mut() {
            *last = self.active.clone();
        }
    }

    /// Seals the active segment (if it holds records) by starting the next one.
    fn roll(&mut self) -> Result<bool, LogError> {
        if self.active.records == 0 {
            return Ok(false);
        }
        self.file.sync_all().map_err(|e| LogError::io("fsync", &self.active.path, e))?;
        let seq = self.active.seq + 1;
        let (file, path) = segment::create_segment(&*self.disk, &self.dir, seq)?;
        let next = SegmentInfo {
            seq,
            name: segment::segment_name(seq),
            path,
            records: 0,
            bytes: 0,
            sealed: false,
            first_ms: None,
        };
        let mut sealed = std::mem::replace(&mut self.active, next.clone());
        sealed.sealed = true;
        self.file = file;
        let mut segs = self.shared.segments.lock().expect("segments lock");
        if let Some(last) = segs.last_mut() {
            *last = sealed.clone();
        }
        segs.push(next);
        tracing::info!(segment = %sealed.name, records = sealed.records, "segment sealed");
        Ok(true)
    }

    /// Forgets sealed segments whose ids [`super::dedup_index::merge`] put on disk, and
    /// deletes them.
    fn retire(&mut self, seqs: &[u64], keys: &[u128], dedup: DedupIndex) -> Result<(), LogError> {
        self.dedup = dedup;
        for key in keys {
            self.index.remove(key);
        }
        let (mut records, mut gone) = (0, Vec::new());
        {
            let mut segs = self.shared.segments.lock().expect("segments lock");
            segs.retain(|s| {
                let retire = s.sealed && seqs.contains(&s.seq);
                if retire {
                    records += s.records;
                    gone.push(s.path.clone());
                }
                !retire
            });
        }
        for p in &gone {
            std::fs::remove_file(p).map_err(|e| LogError::io("delete", p, e))?;
        }
        self.disk.sync_dir(&self.dir).map_err(|e| LogError::io("fsync", &self.dir, e))?;
        // (`records` counts distinct ids at start, lines since: never below zero.)
        let _ = self
            .shared
            .counters
            .records
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(records)));
        tracing::info!(segments = gone.len(), records, "retired synced segments (their ids stay in the on-disk index)");
        Ok(())
    }

    fn handle_control(&mut self, control: Vec<Command>) -> bool {
        let mut stop = false;
        for cmd in control {
            match cmd {
                Command::Roll { reply } => {
                    let _ = reply.send(self.roll());
                }
                Command::Retire { seqs, keys, dedup, reply } => {
                    let _ = reply.send(self.retire(&seqs, &keys, dedup));
                }
                Command::Shutdown { reply } => {
                    self.shutdown_result = self.roll().map(|_| ());
                    self.shutdown_reply = Some(reply);
                    stop = true;
                }
                Command::Append { .. } => {
                    unreachable!("appends are handled before control commands")
                }
            }
        }
        stop
    }
}
