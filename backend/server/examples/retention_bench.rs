//! Start time and memory of the feedback log with a long history, before and after retention
//! (issue 32.5), for `scripts/bench-retention.sh`. Each step is its own process, so its peak
//! RSS is its own:
//!
//! `retention_bench generate --data-dir DIR --records N` writes N valid records as sealed
//! segments of 8 MiB (as the server would have, 40 days ago) and one empty active segment;
//! `retention_bench open --data-dir DIR` opens the log (the replay a start does), times it,
//! answers a retry of the oldest record and a new record, and prints its figures;
//! `retention_bench retire --data-dir DIR` retires every sealed segment (as the syncer does once
//! they are in the dataset and older than the window) and prints how long it took.

use sentiment_server::feedback_log::{Appended, FeedbackLog, LogConfig, SEGMENTS_DIR};
use shared::{FeedbackRecord, FeedbackSubmission};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

fn usage() -> ! {
    eprintln!("usage: retention_bench generate|open|retire --data-dir DIR [--records N]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let dir = PathBuf::from(flag("--data-dir").unwrap_or_else(|| usage()));
    match args.first().map(String::as_str) {
        Some("generate") => {
            generate(&dir, flag("--records").map_or(10_000_000, |n| n.parse().unwrap_or_else(|_| usage())))
        }
        Some("open") => runtime().block_on(open(dir)),
        Some("retire") => runtime().block_on(retire(dir)),
        _ => usage(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime")
}

fn uuid(n: u64) -> String {
    let h = format!("{n:032x}");
    format!("{}-{}-4{}-8{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn record(n: u64) -> FeedbackRecord {
    let labels = ["negative", "neutral", "positive"];
    let scores: BTreeMap<String, f64> =
        [("negative".to_owned(), 0.1), ("neutral".to_owned(), 0.2), ("positive".to_owned(), 0.7)].into();
    let submission = FeedbackSubmission {
        id: uuid(n),
        text: format!("post number {n}: the service was fine, the flight was late and the food was cold"),
        predicted: "positive".into(),
        scores,
        label: labels[(n % 3) as usize].into(),
        model_version: format!("v{}", n % 4),
        note: None,
    };
    let ms = 1_790_000_000_000 + n as i64 * 100;
    FeedbackRecord { submission, received_at: shared::feedback::format_timestamp_millis(ms), client: None }
}

fn generate(dir: &std::path::Path, records: u64) {
    let started = Instant::now();
    let segs = dir.join(SEGMENTS_DIR);
    std::fs::create_dir_all(&segs).expect("create the data dir");
    let (mut seq, mut bytes, mut out) = (1u64, 0usize, None::<std::io::BufWriter<std::fs::File>>);
    let mut line = Vec::with_capacity(512);
    for n in 0..records {
        if out.is_none() || bytes >= 8 << 20 {
            if let Some(mut w) = out.take() {
                w.flush().expect("write");
                seq += 1;
            }
            let path = segs.join(format!("{seq:08}.jsonl"));
            out = Some(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create")));
            bytes = 0;
        }
        line.clear();
        serde_json::to_writer(&mut line, &record(n)).expect("serialize");
        line.push(b'\n');
        out.as_mut().expect("open segment").write_all(&line).expect("write");
        bytes += line.len();
    }
    if let Some(mut w) = out.take() {
        w.flush().expect("write");
    }
    // The active segment: empty, so every one above is sealed.
    std::fs::File::create(segs.join(format!("{:08}.jsonl", seq + 1))).expect("create");
    // Written "40 days ago".
    let old = SystemTime::now() - Duration::from_secs(40 * 86_400);
    for e in std::fs::read_dir(&segs).expect("list") {
        let f = std::fs::File::options().write(true).open(e.expect("entry").path()).expect("open");
        f.set_modified(old).expect("set mtime");
    }
    println!("generated records={records} segments={} in {:.1}s", seq + 1, started.elapsed().as_secs_f64());
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    kb("VmHWM:").unwrap_or(0.0) / 1024.0
}

async fn open(dir: PathBuf) {
    let started = Instant::now();
    let log = FeedbackLog::open(LogConfig::new(&dir)).expect("open the log");
    let opened = started.elapsed();
    let in_memory = log.counters().records.load(std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    let retry = log.append(record(0)).await.expect("append");
    let retry_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(matches!(retry, Appended::Existing(_)), "the oldest record is still recognised: {retry:?}");
    let t = Instant::now();
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let fresh = log.append(record(nanos)).await.expect("append");
    let fresh_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(matches!(fresh, Appended::Stored(_)));
    let segments = log.segments().len();
    log.shutdown().await.expect("shutdown");
    println!(
        "open: {:.2}s, records replayed={in_memory}, segments={segments}, peak RSS {:.0} MB; retry of the oldest record \
         {retry_ms:.2} ms (Existing), a new record {fresh_ms:.2} ms",
        opened.as_secs_f64(),
        peak_rss_mb()
    );
}

async fn retire(dir: PathBuf) {
    let log = FeedbackLog::open(LogConfig::new(&dir)).expect("open the log");
    let sealed: HashSet<String> = log.segments().into_iter().filter(|s| s.sealed).map(|s| s.name).collect();
    let started = Instant::now();
    let mut records = 0;
    loop {
        // As the syncer does, round after round, a bounded number of segments each time.
        let n = log.retire(SystemTime::now(), &sealed).await.expect("retire");
        if n == 0 {
            break;
        }
        records += n;
    }
    let took = started.elapsed();
    log.shutdown().await.expect("shutdown");
    let idx = std::fs::metadata(dir.join("dedup.idx")).map(|m| m.len()).unwrap_or(0);
    println!(
        "retire: {records} records of {} segments in {:.1}s; dedup.idx {:.0} MB",
        sealed.len(),
        took.as_secs_f64(),
        idx as f64 / 1e6
    );
}
