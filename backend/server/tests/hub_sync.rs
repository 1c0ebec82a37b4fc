//! The Hub client against the Hub stand-in, and the log → dataset sync through outages.

mod common;
mod heap_meter;

use common::*;
use hub::{AddFile, HubClient, HubConfig, HubError, Repo, TokenSource};
use hub_stand_in::{Faults, HubStandIn};
use sentiment_server::feedback_log::sync::{SyncConfig, SyncStatus, Syncer, STATE_FILE};
use sentiment_server::feedback_log::{FeedbackLog, LogConfig};
use shared::{FeedbackRecord, FeedbackSubmission};
use std::collections::HashMap;
use std::time::Duration;

const REPO: &str = "datasets/acme/feedback-logs";
const ACME_LOGS: &str = "acme/feedback-logs";

fn record(n: u64) -> FeedbackRecord {
    let submission: FeedbackSubmission = serde_json::from_value(valid(n)).unwrap();
    FeedbackRecord { submission, received_at: "2026-11-18T10:00:00.000Z".into(), client: None }
}

async fn stand_in(faults: Faults) -> HubStandIn {
    let hub = HubStandIn::start("127.0.0.1:0".parse().unwrap(), faults).await.unwrap();
    hub.create_repo(REPO);
    hub
}

fn client(hub: &HubStandIn, timeout_ms: u64) -> HubClient {
    HubClient::new(HubConfig {
        token: Some("hf_test_token".into()),
        token_source: TokenSource::Env,
        timeout: Duration::from_millis(timeout_ms),
        ..HubConfig::new(&hub.endpoint())
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_uploads_lists_and_resolves_through_the_stand_in() {
    let hub = stand_in(Faults { lfs_threshold: 1000, ..Faults::default() }).await;
    let c = client(&hub, 5000);
    let repo = Repo::dataset(ACME_LOGS.parse().unwrap());
    let small = AddFile { path: "data/a/00000001.jsonl".into(), content: b"{\"x\":1}\n".to_vec() };
    // Larger than axum's default body limit (2 MB), which the stand-in once applied to LFS
    // uploads: a busy server's 8 MB segments were refused with 413.
    let large = AddFile { path: "data/a/00000002.jsonl".into(), content: vec![b'z'; 3 << 20] };
    let (c2, r2, files) = (c.clone(), repo.clone(), vec![small.clone(), large.clone()]);
    let info = blocking(move || c2.upload_files(&r2, &files, "two files")).await.unwrap();
    assert_eq!(info.commit_oid.len(), 40);
    let stored = hub.files(REPO);
    assert_eq!(stored[&small.path], small.content);
    assert_eq!(stored[&large.path], large.content);

    let (c2, r2) = (c.clone(), repo.clone());
    let (tree, root, one, meta, missing, dl) = blocking(move || {
        (
            c2.list_tree(&r2, "data", true).unwrap(),
            c2.list_tree(&r2, "", false).unwrap(),
            c2.list_tree(&r2, "data/a", false).unwrap(),
            c2.file_metadata(&r2, "data/a/00000002.jsonl").unwrap(),
            c2.file_metadata(&r2, "data/a/nope.jsonl").unwrap(),
            c2.download(&r2, "data/a/00000001.jsonl").unwrap(),
        )
    })
    .await;
    let files: Vec<_> = tree.iter().filter(|e| e.kind == "file").map(|e| e.path.as_str()).collect();
    assert_eq!(files, ["data/a/00000001.jsonl", "data/a/00000002.jsonl"]);
    assert!(
        tree.iter().find(|e| e.path == "data/a/00000002.jsonl").unwrap().lfs.is_some(),
        "large file went through LFS"
    );
    assert_eq!(root.iter().map(|e| (e.kind.as_str(), e.path.as_str())).collect::<Vec<_>>(), [("directory", "data")]);
    assert_eq!(one.len(), 2);
    assert_eq!(meta.unwrap().size, Some(3 << 20));
    assert_eq!(missing, None);
    assert_eq!(dl, small.content);

    // Errors: a missing repo is a 404, no token a 401, an injected 500 is retryable, an outage
    // is a transport error.
    let (c2, r2) = (c.clone(), Repo::dataset("acme/none".parse().unwrap()));
    let e = blocking(move || c2.list_tree(&r2, "", true)).await.unwrap_err();
    assert!(e.is_not_found() && !e.is_retryable(), "{e}");
    let (c2, r2, f) = (c.clone(), Repo::dataset("acme/none".parse().unwrap()), vec![small.clone()]);
    let e = blocking(move || c2.upload_files(&r2, &f, "to nowhere")).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let (c2, r2, f) = (HubClient::new(HubConfig::new(&hub.endpoint())), repo.clone(), vec![small.clone()]);
    let e = blocking(move || c2.upload_files(&r2, &f, "anonymous")).await.unwrap_err();
    assert!(matches!(e, HubError::Status { status: 401, .. }), "{e}");
    hub.set_faults(Faults { fail_commit_every: 1, ..Faults::default() });
    let (c2, r2, f) = (c.clone(), repo.clone(), vec![small.clone()]);
    let e = blocking(move || c2.upload_files(&r2, &f, "fails")).await.unwrap_err();
    assert!(matches!(e, HubError::Status { status: 500, .. }) && e.is_retryable(), "{e}");
    hub.set_faults(Faults { down: true, ..Faults::default() });
    let (c2, r2) = (client(&hub, 300), repo.clone());
    let e = blocking(move || c2.list_tree(&r2, "", true)).await.unwrap_err();
    assert!(matches!(e, HubError::Transport { .. }) && e.is_retryable(), "{e}");
    assert!(!e.to_string().contains("hf_test_token"));
}

fn sync_config(hub_timeout_ok: bool, instance: &str) -> SyncConfig {
    let _ = hub_timeout_ok;
    let mut cfg =
        SyncConfig::new(Repo::dataset(ACME_LOGS.parse().unwrap()), instance.into(), Duration::from_millis(150));
    cfg.max_records = 40;
    cfg.retry_min = Duration::from_millis(20);
    cfg.retry_max = Duration::from_millis(200);
    cfg.files_per_commit = 3;
    cfg.final_attempt = Duration::from_secs(10);
    cfg
}

/// Every record in the dataset folder of `instance`, as id → times seen.
fn dataset_ids(hub: &HubStandIn, instance: &str) -> HashMap<String, u32> {
    let mut ids = HashMap::new();
    for (path, content) in hub.files(REPO) {
        assert!(path.starts_with(&format!("data/{instance}/")), "unexpected path {path}");
        for line in String::from_utf8(content).unwrap().lines() {
            let rec: FeedbackRecord = serde_json::from_str(line).unwrap();
            *ids.entry(rec.submission.id).or_insert(0) += 1;
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_ends_with_exactly_the_acknowledged_records() {
    let dir = TempDir::new("hub-outage");
    // Half the commits fail: even ones before applying, every third applied but answered 502.
    let hub = stand_in(Faults { fail_commit_every: 2, lose_commit_reply_every: 3, ..Faults::default() }).await;
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    let status = SyncStatus::enabled();
    let syncer =
        Syncer::new(log.clone(), client(&hub, 400), sync_config(true, "i-test"), status.clone(), &dir.0).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(syncer.run(stop_rx));

    let mut acked = Vec::new();
    let mut n = 0u64;
    let add = |count: u64, n: &mut u64| {
        let log = log.clone();
        let start = *n;
        *n += count;
        async move {
            let mut ids = Vec::new();
            for i in start..start + count {
                let r = log.append(record(i)).await.unwrap();
                assert!(matches!(r, sentiment_server::feedback_log::Appended::Stored(_)));
                ids.push(uuid(i));
                if i % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
            ids
        }
    };
    acked.extend(add(300, &mut n).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The Hub goes away: connections refused, open ones hang.
    hub.set_faults(Faults { down: true, ..hub.faults() });
    acked.extend(add(200, &mut n).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let failures_during_outage = status.failures.load(std::sync::atomic::Ordering::Relaxed);
    // Back, still failing half the commits; a few retries (plus a retry by id) arrive.
    hub.set_faults(Faults { fail_commit_every: 2, lose_commit_reply_every: 3, ..Faults::default() });
    acked.extend(add(100, &mut n).await);
    for i in 0..10 {
        assert!(matches!(log.append(record(i)).await.unwrap(), sentiment_server::feedback_log::Appended::Existing(_)));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hub.set_faults(Faults::default());
    log.shutdown().await.unwrap();
    stop_tx.send(true).unwrap();
    task.await.unwrap();

    let ids = dataset_ids(&hub, "i-test");
    let twice: Vec<_> = ids.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "records in the dataset twice: {twice:?}");
    let missing: Vec<_> = acked.iter().filter(|id| !ids.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} acknowledged records missing", missing.len());
    assert_eq!(ids.len(), acked.len());
    let (requests, applied) = hub.commit_counts();
    println!(
        "acknowledged {}, in dataset {}, commit requests {requests}, applied {applied}, sync failures {}",
        acked.len(),
        ids.len(),
        status.failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(requests > applied, "some commits failed before applying");
    let commits_seen_ok = status.commits.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        applied > commits_seen_ok,
        "some applied commits lost their answer ({applied} applied, {commits_seen_ok} answered)"
    );
    assert!(failures_during_outage > 0, "the outage was seen");
    let (synced, pending) = status.split_records(&log.segments());
    assert_eq!((synced, pending), (600, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_bookkeeping_does_not_resend() {
    let dir = TempDir::new("hub-crash");
    let hub = stand_in(Faults::default()).await;
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    for i in 0..5 {
        log.append(record(i)).await.unwrap();
    }
    let mut s =
        Syncer::new(log.clone(), client(&hub, 2000), sync_config(true, "i-a"), SyncStatus::enabled(), &dir.0).unwrap();
    s.round().await.unwrap();
    assert_eq!(hub.commit_counts(), (1, 1));
    // The process died before writing its state: the next start finds the file on the Hub.
    std::fs::remove_file(dir.0.join(STATE_FILE)).unwrap();
    let status = SyncStatus::enabled();
    let mut s = Syncer::new(log.clone(), client(&hub, 2000), sync_config(true, "i-a"), status.clone(), &dir.0).unwrap();
    s.round().await.unwrap();
    assert_eq!(hub.commit_counts(), (1, 1), "nothing re-sent");
    assert_eq!(status.split_records(&log.segments()), (5, 0));
    assert!(dir.0.join(STATE_FILE).exists());

    // A file at our path with other content is never overwritten.
    log.append(record(99)).await.unwrap();
    let (c, r) = (client(&hub, 2000), Repo::dataset(ACME_LOGS.parse().unwrap()));
    blocking(move || {
        c.upload_files(
            &r,
            &[AddFile { path: "data/i-a/00000002.jsonl".into(), content: b"other\n".to_vec() }],
            "intruder",
        )
    })
    .await
    .unwrap();
    // The round goes on: the intruder's file stays, this replica moves to a fresh folder.
    s.round().await.unwrap();
    assert_eq!(hub.files(REPO)["data/i-a/00000002.jsonl"], b"other\n");
    assert_eq!(status.conflicts.load(std::sync::atomic::Ordering::Relaxed), 1);
    let moved: Vec<String> =
        hub.files(REPO).into_keys().filter(|p| p.starts_with("data/i-a-g") && p.ends_with("/00000002.jsonl")).collect();
    assert_eq!(moved.len(), 1, "{:?}", hub.files(REPO).keys().collect::<Vec<_>>());
    assert_eq!(status.split_records(&log.segments()), (6, 0));
    // A restart keeps the new folder (from the sync state), and sends nothing again.
    log.append(record(100)).await.unwrap();
    let mut s = Syncer::new(log.clone(), client(&hub, 2000), sync_config(true, "i-a"), status.clone(), &dir.0).unwrap();
    s.round().await.unwrap();
    let folder = moved[0].rsplit_once('/').unwrap().0.to_owned();
    assert!(hub.files(REPO).contains_key(&format!("{folder}/00000003.jsonl")));

    // Another replica writes only under its own folder.
    let dir_b = TempDir::new("hub-crash-b");
    let log_b = FeedbackLog::open(LogConfig::new(&dir_b.0)).unwrap();
    log_b.append(record(1000)).await.unwrap();
    let mut sb =
        Syncer::new(log_b.clone(), client(&hub, 2000), sync_config(true, "i-b"), SyncStatus::enabled(), &dir_b.0)
            .unwrap();
    sb.round().await.unwrap();
    let paths: Vec<_> = hub.files(REPO).into_keys().filter(|p| !p.starts_with(&folder)).collect();
    assert_eq!(paths, ["data/i-a/00000001.jsonl", "data/i-a/00000002.jsonl", "data/i-b/00000001.jsonl"]);
}

/// Issue 32.4: a conflict at our path, then a long outage with 100,000 records behind. The
/// outage's 30 minutes pass on the syncer's clock (the wall time is a few seconds): sync is
/// seen failing for over 30 minutes, then resumes in commits capped in files and bytes, moves
/// past the conflict, and every record reaches the dataset exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_then_a_long_outage_with_100k_records_behind() {
    const RECORDS: u64 = 100_000;
    /// The stated bound on one commit (and so on what the syncer holds in memory at once).
    const MAX_COMMIT_BYTES: u64 = 4 << 20;
    /// The stated bound on the syncer's memory while it sends the backlog
    /// (docs/server-hardening.md): one commit's files, and its body (the files base64-encoded,
    /// 4/3 of them) in a buffer that grows by doubling, the old and the new buffer live at once
    /// while it grows. Reading the backlog whole (23.5 MB here) breaks it.
    const MAX_SYNC_HEAP_BYTES: usize = 5 * MAX_COMMIT_BYTES as usize;
    const FILES_PER_COMMIT: usize = 16;
    let dir = TempDir::new("hub-long-outage");
    let hub = stand_in(Faults { tree_page_size: 25, ..Faults::default() }).await;
    let (c, r) = (client(&hub, 2000), Repo::dataset(ACME_LOGS.parse().unwrap()));
    let intruder = b"{\"someone\":\"else\"}\n".to_vec();
    let i2 = intruder.clone();
    blocking(move || c.upload_files(&r, &[AddFile { path: "data/i-long/00000001.jsonl".into(), content: i2 }], "x"))
        .await
        .unwrap();

    let log = FeedbackLog::open(LogConfig { max_segment_bytes: 512 << 10, ..LogConfig::new(&dir.0) }).unwrap();
    let clock = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1_795_000_000_000));
    let mut cfg = sync_config(true, "i-long");
    cfg.max_records = u64::MAX;
    cfg.files_per_commit = FILES_PER_COMMIT;
    cfg.max_commit_bytes = MAX_COMMIT_BYTES;
    cfg.commit_timeout = Duration::from_secs(20);
    let c2 = clock.clone();
    cfg.clock = shared::Clock::from_fn(move || c2.load(std::sync::atomic::Ordering::Relaxed));
    let status = SyncStatus::enabled();
    hub.set_faults(Faults { down: true, tree_page_size: 25, ..Faults::default() });
    let syncer = Syncer::new(log.clone(), client(&hub, 300), cfg, status.clone(), &dir.0).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The syncer runs on a runtime of its own whose threads' allocations are counted
    // (`heap_meter`): its memory, apart from the log's writer, the stand-in and the other tests.
    let sync_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(heap_meter::count_this_thread)
        .build()
        .unwrap();
    let task = sync_runtime.spawn(syncer.run(stop_rx));

    // 100,000 records arrive while the Hub is down.
    let started = std::time::Instant::now();
    for chunk in 0..(RECORDS / 5000) {
        let mut tasks = Vec::new();
        for i in chunk * 5000..(chunk + 1) * 5000 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move { log.append(record(i)).await.unwrap() }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), sentiment_server::feedback_log::Appended::Stored(_)));
        }
    }
    println!("{RECORDS} records stored in {:.1} s while the Hub was down", started.elapsed().as_secs_f64());
    // Thirty-one minutes pass on the syncer's clock; attempts keep failing.
    tokio::time::sleep(Duration::from_millis(800)).await;
    clock.fetch_add(31 * 60_000, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let now = clock.load(std::sync::atomic::Ordering::Relaxed);
    assert!(status.failing_for_ms(now) > 30 * 60_000, "failing for {} ms", status.failing_for_ms(now));
    let (backlog, backlog_bytes, _) = status.backlog(&log.segments());
    assert_eq!(backlog, RECORDS);

    // The Hub is back.
    let held_before = heap_meter::live();
    heap_meter::reset_peak();
    hub.set_faults(Faults { tree_page_size: 25, ..Faults::default() });
    let resumed = std::time::Instant::now();
    while status.split_records(&log.segments()).1 > 0 {
        assert!(resumed.elapsed() < Duration::from_secs(180), "sync did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caught_up = resumed.elapsed();
    let sync_peak = heap_meter::peak().saturating_sub(held_before);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    sync_runtime.shutdown_background();
    log.shutdown().await.unwrap();

    let files = hub.files(REPO);
    assert_eq!(files["data/i-long/00000001.jsonl"], intruder, "the other file is left as it was");
    let mut ids: HashMap<String, u32> = HashMap::new();
    for (path, content) in &files {
        if path == "data/i-long/00000001.jsonl" {
            continue;
        }
        assert!(path.starts_with("data/i-long-g"), "{path}");
        for line in String::from_utf8(content.clone()).unwrap().lines() {
            let rec: FeedbackRecord = serde_json::from_str(line).unwrap();
            *ids.entry(rec.submission.id).or_insert(0) += 1;
        }
    }
    assert_eq!(ids.len() as u64, RECORDS, "every record in the dataset");
    assert!(ids.values().all(|&n| n == 1), "none twice");
    assert_eq!(status.conflicts.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(status.failing_for_ms(now), 0, "sync is healthy again");
    let (files_max, body_max) = hub.largest_commit();
    // Regular files travel base64-encoded in the commit's JSON lines: 4/3 of their bytes.
    assert!(files_max <= FILES_PER_COMMIT, "{files_max} files in one commit");
    assert!(body_max as u64 <= MAX_COMMIT_BYTES * 4 / 3 + 64 * 1024, "{body_max} bytes in one commit");
    assert!(
        sync_peak <= MAX_SYNC_HEAP_BYTES,
        "the syncer's heap grew by {sync_peak} bytes while it sent the backlog ({backlog_bytes} bytes), more than \
         the {MAX_SYNC_HEAP_BYTES} stated"
    );
    let (requests, applied) = hub.commit_counts();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.to_owned()))
        .unwrap_or_default();
    println!(
        "backlog {backlog} records ({:.1} MB) sent in {:.1} s, {applied} commits ({requests} requests), largest \
         {files_max} files / {:.2} MB; conflicts 1; the syncer's heap grew by at most {:.2} MB while it caught up; \
         test process peak {rss} (with the stand-in's copy of the dataset)",
        backlog_bytes as f64 / 1e6,
        caught_up.as_secs_f64(),
        body_max as f64 / 1e6,
        sync_peak as f64 / 1e6,
    );
}

/// Issue 31.7, the dataset layout agreed with compaction: `sentiment-trainer compact` replaces a
/// run of this replica's shards by one range file `<a>-<b>.jsonl` (the shards' bytes
/// concatenated). A server that lost its sync state finds its segments inside such a file and
/// sends nothing again; a range file covering its numbers with other records (a data dir reset
/// under the same instance id) moves it to a fresh folder instead of counting them as synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_inside_a_compacted_range_file_count_as_synced() {
    let dir = TempDir::new("hub-range");
    let hub = stand_in(Faults::default()).await;
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    let mut cfg = sync_config(true, "i-r");
    cfg.files_per_commit = 50;
    // Three sealed segments of three records each.
    for seg in 0..3u64 {
        for i in 0..3 {
            log.append(record(seg * 10 + i)).await.unwrap();
        }
        log.roll().await.unwrap();
    }
    let segments = log.segments();
    let bytes = |seq: u64| std::fs::read(dir.0.join(format!("segments/{seq:08}.jsonl"))).unwrap();
    // Compaction already replaced shards 1-2 (their commit went through, the state was lost);
    // shard 3 was never sent.
    let (c, r) = (client(&hub, 2000), Repo::dataset(ACME_LOGS.parse().unwrap()));
    let range = [bytes(1), bytes(2)].concat();
    blocking(move || {
        c.upload_files(&r, &[AddFile { path: "data/i-r/00000001-00000002.jsonl".into(), content: range }], "compact")
    })
    .await
    .unwrap();
    let status = SyncStatus::enabled();
    let mut s = Syncer::new(log.clone(), client(&hub, 2000), cfg.clone(), status.clone(), &dir.0).unwrap();
    s.round().await.unwrap();
    let files = hub.files(REPO);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["data/i-r/00000001-00000002.jsonl", "data/i-r/00000003.jsonl"],
        "segments 1-2 not sent again"
    );
    assert_eq!(files["data/i-r/00000003.jsonl"], bytes(3));
    assert_eq!(status.split_records(&segments), (9, 0));
    assert_eq!(status.conflicts.load(std::sync::atomic::Ordering::Relaxed), 0);

    // A data dir reset under the same instance id: its segment 1 is not what the range holds.
    log.shutdown().await.unwrap();
    drop((s, log));
    let dir2 = TempDir::new("hub-range-reset");
    let log = FeedbackLog::open(LogConfig::new(&dir2.0)).unwrap();
    log.append(record(500)).await.unwrap();
    let status = SyncStatus::enabled();
    let mut s = Syncer::new(log.clone(), client(&hub, 2000), cfg, status.clone(), &dir2.0).unwrap();
    s.round().await.unwrap();
    assert_eq!(status.conflicts.load(std::sync::atomic::Ordering::Relaxed), 1);
    let moved: Vec<String> = hub.files(REPO).into_keys().filter(|p| p.starts_with("data/i-r-g")).collect();
    assert_eq!(moved.len(), 1, "the new record went to a fresh folder: {moved:?}");
    assert!(moved[0].ends_with("/00000001.jsonl"));
    assert_eq!(status.split_records(&log.segments()), (1, 0));
    log.shutdown().await.unwrap();
}

fn segment_files(data_dir: &std::path::Path) -> usize {
    std::fs::read_dir(data_dir.join("segments")).unwrap().count()
}

/// Issue 32.5: segments in the dataset and older than the window leave the disk; their ids stay
/// recognised (a retry gets the stored record's time, another body a conflict), across a
/// restart; nothing leaves the disk while sync fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_synced_segments_and_still_recognises_their_ids() {
    use sentiment_server::feedback_log::Appended;
    let dir = TempDir::new("hub-retention");
    let hub = stand_in(Faults { down: true, ..Faults::default() }).await;
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    for seg in 0..3u64 {
        for i in 0..4 {
            log.append(record(seg * 10 + i)).await.unwrap();
        }
        log.roll().await.unwrap();
    }
    let mut cfg = sync_config(true, "i-ret");
    cfg.files_per_commit = 50;
    cfg.retention = Some(Duration::ZERO);
    let status = SyncStatus::enabled();
    // The Hub is down: nothing is in the dataset, so nothing leaves the disk.
    let mut s = Syncer::new(log.clone(), client(&hub, 300), cfg.clone(), status.clone(), &dir.0).unwrap();
    assert!(s.round().await.is_err());
    assert_eq!(segment_files(&dir.0), 4, "3 sealed + the active one");

    hub.set_faults(Faults::default());
    let mut s = Syncer::new(log.clone(), client(&hub, 2000), cfg, status.clone(), &dir.0).unwrap();
    s.round().await.unwrap();
    assert_eq!(segment_files(&dir.0), 1, "only the active segment is left");
    assert!(dir.0.join("dedup.idx").exists());
    assert_eq!(log.counters().records.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(log.counters().retired.load(std::sync::atomic::Ordering::Relaxed), 12);
    let retry = |log: FeedbackLog, n: u64| async move { log.append(record(n)).await.unwrap() };
    match retry(log.clone(), 21).await {
        Appended::Existing(r) => assert_eq!(r.received_at, "2026-11-18T10:00:00.000Z"),
        other => panic!("a retry of a retired record: {other:?}"),
    }
    let mut changed = record(2);
    changed.submission.text = "another body".into();
    assert_eq!(log.append(changed).await.unwrap(), Appended::Conflict);
    assert!(matches!(retry(log.clone(), 500).await, Appended::Stored(_)));
    log.shutdown().await.unwrap();
    drop(s);

    // After a restart (which replays only the active segment) the retired ids are still known.
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    assert_eq!(log.counters().records.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(matches!(retry(log.clone(), 3).await, Appended::Existing(_)));
    assert!(matches!(retry(log.clone(), 500).await, Appended::Existing(_)));
    assert!(matches!(retry(log.clone(), 501).await, Appended::Stored(_)));
    log.shutdown().await.unwrap();
    let ids = dataset_ids(&hub, "i-ret");
    assert_eq!(ids.len(), 12);
    assert!(ids.values().all(|&n| n == 1));
}

/// Issue 31.7: sync keeps working while compaction rewrites the replica's folder. A compactor
/// (the commits `sentiment-trainer compact` makes: add a range file `<a>-<b>.jsonl` holding a
/// run of shards' bytes, delete the shards, in one commit) runs as fast as it can on every
/// shard but the newest, while records arrive, the listing comes in pages of 5 and a quarter of
/// the commits lose their answer (so the server often looks for a shard that is already inside
/// a range file). Every record ends in the dataset exactly once, with no conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_keeps_working_while_compaction_replaces_its_shards() {
    const RECORDS: u64 = 1500;
    let faults = Faults { tree_page_size: 5, lose_commit_reply_every: 4, ..Faults::default() };
    let dir = TempDir::new("hub-compacting");
    let hub = stand_in(faults.clone()).await;
    let log = FeedbackLog::open(LogConfig::new(&dir.0)).unwrap();
    let status = SyncStatus::enabled();
    let mut cfg = sync_config(true, "i-cmp");
    // After a lost answer the compactor (every 30 ms) gets to the shard before the retry.
    cfg.retry_min = Duration::from_millis(300);
    cfg.retry_max = Duration::from_millis(600);
    let syncer = Syncer::new(log.clone(), client(&hub, 2000), cfg, status.clone(), &dir.0).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sync_task = tokio::spawn(syncer.run(stop_rx));

    let (c, repo) = (client(&hub, 2000), Repo::dataset(ACME_LOGS.parse().unwrap()));
    let stop_compacting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = stop_compacting.clone();
    let compactor = tokio::task::spawn_blocking(move || {
        let mut ranges = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(30));
            let Ok(tree) = c.list_tree(&repo, "data/i-cmp", true) else { continue };
            let mut shards: Vec<u64> = tree
                .iter()
                // Shards only: a range file's name does not parse as a number.
                .filter_map(|e| e.path.strip_prefix("data/i-cmp/")?.strip_suffix(".jsonl")?.parse().ok())
                .collect();
            shards.sort_unstable();
            shards.pop(); // never the newest shard
                          // The first run of consecutive shards, at most 4.
            let run: Vec<u64> = shards
                .iter()
                .enumerate()
                .take_while(|(i, &n)| n == shards[0] + *i as u64)
                .map(|(_, &n)| n)
                .take(4)
                .collect();
            if run.len() < 2 {
                continue;
            }
            let paths: Vec<String> = run.iter().map(|n| format!("data/i-cmp/{n:08}.jsonl")).collect();
            let Ok(parts) = paths.iter().map(|p| c.download(&repo, p)).collect::<Result<Vec<_>, _>>() else { continue };
            let range = AddFile {
                path: format!("data/i-cmp/{:08}-{:08}.jsonl", run[0], run[run.len() - 1]),
                content: parts.concat(),
            };
            let commit = hub::Commit { summary: "compact", add: &[range], delete: &paths, parent: None };
            // A lost answer may hide an applied commit: the next listing shows it either way.
            if c.commit(&repo, &commit).is_ok() {
                ranges += 1;
            }
        }
        ranges
    });

    let mut acked = Vec::new();
    for i in 0..RECORDS {
        assert!(matches!(log.append(record(i)).await.unwrap(), sentiment_server::feedback_log::Appended::Stored(_)));
        acked.push(uuid(i));
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Short outages: the backlog goes out in commits of several shards, so a lost answer
        // leaves older shards that the compactor takes before the retry.
        if i % 150 == 50 {
            hub.set_faults(Faults { down: true, ..faults.clone() });
        } else if i % 150 == 110 {
            hub.set_faults(faults.clone());
        }
    }
    hub.set_faults(faults.clone());
    let started = std::time::Instant::now();
    while status.split_records(&log.segments()).1 > 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "sync stalled while compaction ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_compacting.store(true, std::sync::atomic::Ordering::Relaxed);
    let ranges = compactor.await.unwrap();
    stop_tx.send(true).unwrap();
    sync_task.await.unwrap();
    log.shutdown().await.unwrap();

    let ids = dataset_ids(&hub, "i-cmp");
    let files = hub.files(REPO);
    let range_files = files.keys().filter(|p| p.rsplit('/').next().is_some_and(|name| name.contains('-'))).count();
    println!(
        "{} files ({range_files} range files; {ranges} compactions answered), {} records, commits {:?}, \
         sync failures {}, conflicts {}",
        files.len(),
        ids.values().sum::<u32>(),
        hub.commit_counts(),
        status.failures.load(std::sync::atomic::Ordering::Relaxed),
        status.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(range_files > 0, "compaction ran");
    assert_eq!(status.conflicts.load(std::sync::atomic::Ordering::Relaxed), 0, "no conflict from compaction");
    assert!(ids.values().all(|&n| n == 1), "a record twice");
    assert_eq!(ids.len(), acked.len(), "every acknowledged record once");
    assert!(acked.iter().all(|id| ids.contains_key(id)));
}
