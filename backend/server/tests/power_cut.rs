//! Issue 32.8: the real log writer on a disk that loses, at a simulated power cut, whatever was
//! not fsync'd (a `kill -9` keeps the page cache, so the crash test cannot see a missing fsync).
//!
//! `PowerCutDisk` passes every write to real files and remembers, per file, how many bytes an
//! fsync made durable and whether its directory entry was fsync'd. At the cut it freezes (later
//! writes fail, as on a dead machine), then each file keeps its durable bytes plus a random
//! part of the rest (the page cache may have flushed some, possibly half a line), and files
//! whose entry was never made durable vanish. The log is then reopened from what is left.
//! With the writer's fsyncs, no acknowledged record is lost; with a disk that drops fsyncs (as
//! if the writer did not call them), acknowledged records are lost and the test sees it.

mod common;

use common::*;
use sentiment_server::feedback_log::disk::{Disk, DiskFile, OsDisk};
use sentiment_server::feedback_log::{Appended, FeedbackLog, LogConfig};
use shared::{FeedbackRecord, FeedbackSubmission};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct FileState {
    written: u64,
    durable: u64,
    entry_durable: bool,
}

#[derive(Debug, Default)]
struct DiskState {
    files: HashMap<PathBuf, FileState>,
    cut: bool,
}

#[derive(Debug)]
struct PowerCutDisk {
    state: Arc<Mutex<DiskState>>,
    /// false: fsync calls do nothing, as if the writer made none.
    honor_fsync: bool,
}

struct CutFile {
    path: PathBuf,
    file: std::fs::File,
    state: Arc<Mutex<DiskState>>,
    honor_fsync: bool,
}

fn dead() -> io::Error {
    io::Error::other("the power is off")
}

impl Disk for PowerCutDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut st = self.state.lock().unwrap();
        if st.cut {
            return Err(dead());
        }
        let file = std::fs::OpenOptions::new().create_new(true).append(true).open(path)?;
        st.files.insert(path.to_owned(), FileState::default());
        Ok(Box::new(CutFile { path: path.to_owned(), file, state: self.state.clone(), honor_fsync: self.honor_fsync }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut st = self.state.lock().unwrap();
        if st.cut {
            return Err(dead());
        }
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        // A file found at start was made durable before (the previous run's cut settled it).
        let len = file.metadata()?.len();
        st.files.insert(path.to_owned(), FileState { written: len, durable: len, entry_durable: true });
        Ok(Box::new(CutFile { path: path.to_owned(), file, state: self.state.clone(), honor_fsync: self.honor_fsync }))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock().unwrap();
        if st.cut {
            return Err(dead());
        }
        if self.honor_fsync {
            for (p, f) in st.files.iter_mut() {
                if p.parent() == Some(dir) {
                    f.entry_durable = true;
                }
            }
        }
        Ok(())
    }
}

impl CutFile {
    fn sync(&mut self) -> io::Result<()> {
        let mut st = self.state.lock().unwrap();
        if st.cut {
            return Err(dead());
        }
        if self.honor_fsync {
            let f = st.files.get_mut(&self.path).expect("known file");
            f.durable = f.written;
        }
        Ok(())
    }
}

impl DiskFile for CutFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock().unwrap();
        if st.cut {
            return Err(dead());
        }
        io::Write::write_all(&mut self.file, buf)?;
        st.files.get_mut(&self.path).expect("known file").written += buf.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut st = self.state.lock().unwrap();
        if st.cut {
            return Err(dead());
        }
        self.file.set_len(len)?;
        let f = st.files.get_mut(&self.path).expect("known file");
        f.written = len;
        f.durable = f.durable.min(len);
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync()
    }
}

impl PowerCutDisk {
    fn new(honor_fsync: bool) -> Arc<Self> {
        Arc::new(PowerCutDisk { state: Default::default(), honor_fsync })
    }

    /// The power goes off: nothing more is written. Returns what the disk will hold: per file,
    /// `None` (its entry is gone) or the length that survives.
    fn cut(&self, rng: &mut u64) -> Vec<(PathBuf, Option<u64>)> {
        let mut st = self.state.lock().unwrap();
        st.cut = true;
        st.files
            .iter()
            .map(|(p, f)| {
                if !f.entry_durable {
                    return (p.clone(), None);
                }
                // The page cache may have flushed any prefix of what was never fsync'd.
                let extra = f.written - f.durable;
                let kept = if extra == 0 { 0 } else { next(rng) % (extra + 1) };
                (p.clone(), Some(f.durable + kept))
            })
            .collect()
    }
}

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn record(n: u64) -> FeedbackRecord {
    let submission: FeedbackSubmission = serde_json::from_value(valid(n)).unwrap();
    FeedbackRecord { submission, received_at: "2026-11-18T10:00:00.000Z".into(), client: None }
}

/// `cuts` power cuts under load (small segments, so segments are created and sealed in between),
/// each followed by a restart on what the disk kept. Returns (acknowledged, acknowledged but
/// lost, records on disk at the end).
async fn run(honor_fsync: bool, cuts: usize, seed: u64) -> (usize, usize, usize) {
    let dir = TempDir::new(if honor_fsync { "power-cut" } else { "power-cut-nofsync" });
    let mut rng = seed;
    let mut acked: HashSet<String> = HashSet::new();
    let mut n = 0u64;
    for _ in 0..cuts {
        let disk = PowerCutDisk::new(honor_fsync);
        let config = LogConfig { disk: disk.clone(), max_segment_bytes: 16 << 10, ..LogConfig::new(&dir.0) };
        let log = FeedbackLog::open(config).unwrap();
        let acked_now = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for c in 0..8u64 {
            let (log, acked_now) = (log.clone(), acked_now.clone());
            let start = n + c * 100_000;
            tasks.push(tokio::spawn(async move {
                for i in start..start + 100_000 {
                    match log.append(record(i)).await {
                        Ok(Appended::Stored(r)) => acked_now.lock().unwrap().push(r.submission.id),
                        Ok(other) => panic!("{other:?}"),
                        Err(_) => break, // the power is off
                    }
                }
            }));
        }
        n += 8 * 100_000;
        tokio::time::sleep(Duration::from_millis(20 + next(&mut rng) % 60)).await;
        let plan = disk.cut(&mut rng);
        for t in tasks {
            t.await.unwrap();
        }
        let _ = log.shutdown().await; // fails: the disk is dead; releases the data dir
        drop(log);
        for (path, keep) in plan {
            match keep {
                None => {
                    let _ = std::fs::remove_file(&path);
                }
                Some(len) => {
                    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len).unwrap();
                }
            }
        }
        acked.extend(acked_now.lock().unwrap().drain(..));
    }
    // The last restart on the real disk replays (and cuts torn tails of) what survived.
    let log = FeedbackLog::open(LogConfig { disk: Arc::new(OsDisk), ..LogConfig::new(&dir.0) }).unwrap();
    log.shutdown().await.unwrap();
    let stored: HashSet<String> = stored_records(&dir.0).into_iter().map(|r| r.submission.id).collect();
    let lost = acked.iter().filter(|id| !stored.contains(*id)).count();
    (acked.len(), lost, stored.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_lose_no_acknowledged_record() {
    let (acked, lost, stored) = run(true, 12, 0x9e37_79b9_7f4a_7c15).await;
    println!("with fsync: 12 power cuts, {acked} acknowledged, {lost} of them lost, {stored} on disk");
    assert!(acked > 1000, "the load ran ({acked} acknowledged)");
    assert_eq!(lost, 0, "acknowledged records lost at a power cut");
}

/// The same cuts on a disk that drops fsyncs (what the writer would get without them): the test
/// above would catch a writer that does not fsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fsync_power_cuts_lose_acknowledged_records() {
    let (acked, lost, stored) = run(false, 12, 0x9e37_79b9_7f4a_7c15).await;
    println!("without fsync: 12 power cuts, {acked} acknowledged, {lost} of them lost, {stored} on disk");
    assert!(lost > 0, "a disk that ignores fsync must lose acknowledged records at a cut");
}
