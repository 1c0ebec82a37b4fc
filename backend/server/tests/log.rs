//! The durable log: group commit, replay, torn-tail recovery, id index rebuild, rolling.

mod common;

use common::*;
use sentiment_server::feedback_log::{Appended, FeedbackLog, LogConfig, LogError};
use shared::{FeedbackRecord, FeedbackSubmission};
use std::io::Write;

fn record(n: u64) -> FeedbackRecord {
    let submission: FeedbackSubmission = serde_json::from_value(valid(n)).unwrap();
    FeedbackRecord { submission, received_at: format!("2026-11-18T10:00:{:02}.000Z", n % 60), client: None }
}

fn segment(dir: &std::path::Path, seq: u64) -> std::path::PathBuf {
    dir.join("segments").join(format!("{seq:08}.jsonl"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs_and_all_survive_reopen() {
    let dir = TempDir::new("log-group");
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    let mut tasks = Vec::new();
    for n in 0..400 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(record(n)).await.unwrap() }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Appended::Stored(_)));
    }
    let batches = log.counters().batches.load(std::sync::atomic::Ordering::Relaxed);
    assert!(batches < 400, "group commit: 400 appends took {batches} fsyncs");
    log.shutdown().await.unwrap();
    drop(log);

    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    assert_eq!(log.counters().records.load(std::sync::atomic::Ordering::Relaxed), 400);
    // The rebuilt index answers retries without storing again.
    match log.append(record(123)).await.unwrap() {
        Appended::Existing(r) => assert_eq!(r, record(123)),
        other => panic!("{other:?}"),
    }
    let mut changed = record(5);
    changed.submission.label = "negative".into();
    assert_eq!(log.append(changed).await.unwrap(), Appended::Conflict);
    log.shutdown().await.unwrap();
    assert_eq!(stored_records(&dir.0).len(), 400);
}

#[tokio::test]
async fn a_torn_last_line_is_cut_and_earlier_records_kept() {
    let dir = TempDir::new("log-torn");
    let live = TempDir::new("log-torn-live");
    let log = FeedbackLog::open(LogConfig::new(&live.0)).unwrap();
    for n in 0..3 {
        log.append(record(n)).await.unwrap();
    }
    // What is on disk while the server runs (every acknowledged append is fsync'd) is what a
    // crash leaves: copy it, then tear the last write as a crash in the middle of it would.
    std::fs::create_dir_all(dir.0.join("segments")).unwrap();
    std::fs::copy(segment(&live.0, 1), segment(&dir.0, 1)).unwrap();
    log.shutdown().await.unwrap();
    let path = segment(&dir.0, 1);
    let before = std::fs::read(&path).unwrap();
    let partial = serde_json::to_string(&record(3)).unwrap();
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&partial.as_bytes()[..40]).unwrap();

    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    assert_eq!(log.counters().cut_bytes.load(std::sync::atomic::Ordering::Relaxed), 40);
    assert_eq!(std::fs::read(&path).unwrap(), before, "earlier bytes untouched, tail cut");
    // The torn record was never acknowledged: storing it now is a fresh 'Stored'.
    assert!(matches!(log.append(record(3)).await.unwrap(), Appended::Stored(_)));
    log.shutdown().await.unwrap();
    assert_eq!(stored_records(&dir.0).len(), 4);
}

#[tokio::test]
async fn damage_before_a_good_line_refuses_to_start() {
    let dir = TempDir::new("log-corrupt");
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    for n in 0..3 {
        log.append(record(n)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    drop(log);
    let path = segment(&dir.0, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged = text.replacen("\"label\"", "\"lab", 1);
    std::fs::write(&path, &damaged).unwrap();
    match FeedbackLog::open(LogConfig::new(&dir.0)) {
        Err(LogError::Corrupt { line, .. }) => assert_eq!(line, 1),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a damaged middle line must stop the start"),
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), damaged, "nothing was cut");
}

#[tokio::test]
async fn segments_roll_by_size_and_on_demand() {
    let dir = TempDir::new("log-roll");
    let cfg = LogConfig { max_segment_bytes: 1000, ..LogConfig::new(&dir.0) };
    let log = FeedbackLog::open(cfg.clone()).unwrap();
    for n in 0..10 {
        log.append(record(n)).await.unwrap();
    }
    // Answers go out before a size roll; a retry is handled after it, so it is a barrier.
    assert!(matches!(log.append(record(0)).await.unwrap(), Appended::Existing(_)));
    let segs = log.segments();
    assert!(segs.len() >= 3, "{segs:?}");
    assert!(segs[..segs.len() - 1].iter().all(|s| s.sealed && s.bytes >= 1000 && s.records > 0));
    assert!(!segs.last().unwrap().sealed);
    let total: u64 = segs.iter().map(|s| s.records).sum();
    assert_eq!(total, 10);
    // Rolling an empty active segment does nothing; a non-empty one seals it.
    if segs.last().unwrap().records == 0 {
        assert!(!log.roll().await.unwrap());
    }
    log.append(record(99)).await.unwrap();
    assert!(log.roll().await.unwrap());
    assert!(log.segments().iter().rev().nth(1).unwrap().sealed);
    log.shutdown().await.unwrap();
    assert!(matches!(log.append(record(100)).await, Err(LogError::Closed)));
    log.shutdown().await.unwrap();
    drop(log);
    let log = FeedbackLog::open(cfg).unwrap();
    assert_eq!(log.segments().iter().map(|s| s.records).sum::<u64>(), 11);
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_data_dir() {
    let dir = TempDir::new("log-lock");
    let _log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    // flock is per open file description, so a second open in this process conflicts too.
    assert!(matches!(FeedbackLog::open(LogConfig::new(&dir.0)), Err(LogError::Locked(_))));
}
