//! Load generator and log checker for `sentiment-server` (a second process on loopback).
//!
//! `cargo run --release -p sentiment-server --example feedback_load -- run --url http://127.0.0.1:8080
//!   --connections 64 --duration 10s [--count N] [--pause-ms N] [--acked FILE] [--attempted FILE]`
//! posts valid feedback over keep-alive HTTP/1.1 connections, each request with a fresh id
//! (retried with the same id after a connection error, as a browser would), and prints
//! acknowledged records per second and latency percentiles. `--stats-connections N` also has N
//! more connections hammer `GET /api/feedback/stats` meanwhile (each every `--stats-every-ms`,
//! default 5) (issue 32.3: stats must not
//! slow acknowledgements) and prints their rate and latency.
//!
//! `... -- verify --data-dir DIR --acked FILE --attempted FILE` reads every segment of a log
//! and checks: every line is a complete record, every acknowledged id is there exactly once,
//! no id is there twice, and nothing is there that was never sent.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct RunArgs {
    addr: String,
    connections: usize,
    duration: Duration,
    acked: Option<PathBuf>,
    attempted: Option<PathBuf>,
    stats_connections: usize,
    stats_every_ms: u64,
    /// Stop once this many distinct records were sent (each retried until acknowledged).
    count: Option<u64>,
    /// Wait this long after each answer (paces a client, e.g. to kill a server mid-load).
    pause_ms: u64,
}

fn usage() -> ! {
    eprintln!("usage: feedback_load run --url http://HOST:PORT [--connections N] [--duration 10s] [--count N] [--pause-ms N] [--acked FILE] [--attempted FILE]\n       feedback_load verify --data-dir DIR --acked FILE --attempted FILE");
    std::process::exit(2)
}

fn parse_secs(s: &str) -> Duration {
    let n: f64 = s.trim_end_matches('s').parse().unwrap_or_else(|_| usage());
    Duration::from_secs_f64(n)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut flags = HashMap::new();
    let mut i = 1;
    while i + 1 < args.len() {
        flags.insert(args[i].trim_start_matches("--").to_owned(), args[i + 1].clone());
        i += 2;
    }
    match args.first().map(String::as_str) {
        Some("run") => {
            let url = flags.get("url").cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
            let run = RunArgs {
                addr: url.trim_start_matches("http://").trim_end_matches('/').to_owned(),
                connections: flags.get("connections").map(|s| s.parse().unwrap_or_else(|_| usage())).unwrap_or(64),
                duration: flags.get("duration").map(|s| parse_secs(s)).unwrap_or(Duration::from_secs(10)),
                acked: flags.get("acked").map(PathBuf::from),
                attempted: flags.get("attempted").map(PathBuf::from),
                stats_connections: flags
                    .get("stats-connections")
                    .map(|s| s.parse().unwrap_or_else(|_| usage()))
                    .unwrap_or(0),
                count: flags.get("count").map(|s| s.parse().unwrap_or_else(|_| usage())),
                pause_ms: flags.get("pause-ms").map(|s| s.parse().unwrap_or_else(|_| usage())).unwrap_or(0),
                stats_every_ms: flags.get("stats-every-ms").map(|s| s.parse().unwrap_or_else(|_| usage())).unwrap_or(5),
            };
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(run_load(run));
        }
        Some("verify") => {
            let dir = PathBuf::from(flags.get("data-dir").unwrap_or_else(|| usage()));
            let acked = PathBuf::from(flags.get("acked").unwrap_or_else(|| usage()));
            let attempted = PathBuf::from(flags.get("attempted").unwrap_or_else(|| usage()));
            std::process::exit(verify(&dir, &acked, &attempted));
        }
        _ => usage(),
    }
}

fn body(id: &str, n: u64) -> String {
    let labels = ["negative", "neutral", "positive"];
    let (p, l) = (labels[(n % 3) as usize], labels[(n / 3 % 3) as usize]);
    format!(
        r#"{{"id":"{id}","text":"load test tweet number {n} about the service","predicted":"{p}","scores":{{"negative":0.2,"neutral":0.3,"positive":0.5}},"label":"{l}","model_version":"bench"}}"#
    )
}

#[derive(Default)]
struct Totals {
    latencies_us: Vec<u64>,
    statuses: HashMap<u16, u64>,
    io_errors: u64,
}

struct Sinks {
    acked: Option<std::io::BufWriter<std::fs::File>>,
    attempted: Option<std::io::BufWriter<std::fs::File>>,
}

async fn run_load(args: RunArgs) {
    let prefix: u32 =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u32) | 1;
    let open = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap()))
    };
    let sinks = Arc::new(Mutex::new(Sinks { acked: open(&args.acked), attempted: open(&args.attempted) }));
    let totals = Arc::new(Mutex::new(Totals::default()));
    let deadline = Instant::now() + args.duration;
    let tickets = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let stats_tasks: Vec<_> = (0..args.stats_connections)
        .map(|_| {
            let addr = args.addr.clone();
            let every = Duration::from_millis(args.stats_every_ms.max(1));
            tokio::spawn(async move { hammer_stats(&addr, deadline, every).await })
        })
        .collect();
    for c in 0..args.connections {
        let (addr, sinks, totals, tickets, count, pause) = (
            args.addr.clone(),
            sinks.clone(),
            totals.clone(),
            tickets.clone(),
            args.count,
            Duration::from_millis(args.pause_ms),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<TcpStream> = None;
            let mut seq = 0u64;
            let mut local = Totals::default();
            let mut pending: Option<(String, String)> = None; // (id, body) to retry
            let mut buf = vec![0u8; 64 * 1024];
            while Instant::now() < deadline {
                if pending.is_none()
                    && count.is_some_and(|n| tickets.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= n)
                {
                    break;
                }
                let (id, req_body) = pending.take().unwrap_or_else(|| {
                    seq += 1;
                    let n = (c as u64) << 40 | seq;
                    let id = format!("{prefix:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", c as u16, (seq >> 12) & 0xfff, seq & 0xfff, n & 0xffff_ffff_ffff);
                    let b = body(&id, n);
                    if let Some(w) = sinks.lock().unwrap().attempted.as_mut() {
                        let _ = writeln!(w, "{id}");
                    }
                    (id, b)
                });
                if conn.is_none() {
                    match TcpStream::connect(&addr).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            conn = Some(s)
                        }
                        Err(_) => {
                            local.io_errors += 1;
                            pending = Some((id, req_body));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                }
                let stream = conn.as_mut().unwrap();
                let req = format!(
                    "POST /api/feedback HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{req_body}",
                    req_body.len()
                );
                let t0 = Instant::now();
                let result = async {
                    stream.write_all(req.as_bytes()).await?;
                    read_response(stream, &mut buf).await
                };
                match tokio::time::timeout(Duration::from_secs(15), result).await {
                    Ok(Ok(status)) => {
                        local.latencies_us.push(t0.elapsed().as_micros() as u64);
                        *local.statuses.entry(status).or_default() += 1;
                        if status == 200 || status == 201 {
                            if let Some(w) = sinks.lock().unwrap().acked.as_mut() {
                                let _ = writeln!(w, "{id}");
                            }
                            if !pause.is_zero() {
                                tokio::time::sleep(pause).await;
                            }
                        } else if status >= 500 || status == 429 {
                            pending = Some((id, req_body)); // retry the same id
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    _ => {
                        local.io_errors += 1;
                        conn = None;
                        pending = Some((id, req_body));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            let mut t = totals.lock().unwrap();
            t.latencies_us.extend(local.latencies_us);
            for (k, v) in local.statuses {
                *t.statuses.entry(k).or_default() += v;
            }
            t.io_errors += local.io_errors;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    if !stats_tasks.is_empty() {
        let mut lat = Vec::new();
        for t in stats_tasks {
            lat.extend(t.await.unwrap());
        }
        lat.sort_unstable();
        let p = |q: f64| lat.get(((lat.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |&v| v as f64 / 1000.0);
        println!(
            "stats_connections={} stats_answers={} stats_rate={:.0}/s stats_p50={:.2}ms stats_p99={:.2}ms",
            args.stats_connections,
            lat.len(),
            lat.len() as f64 / elapsed,
            p(0.5),
            p(0.99)
        );
    }
    {
        let mut s = sinks.lock().unwrap();
        if let Some(w) = s.acked.as_mut() {
            w.flush().unwrap();
        }
        if let Some(w) = s.attempted.as_mut() {
            w.flush().unwrap();
        }
    }
    let mut t = totals.lock().unwrap();
    t.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if t.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((t.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        t.latencies_us[i] as f64 / 1000.0
    };
    let acked = t.statuses.get(&201).copied().unwrap_or(0) + t.statuses.get(&200).copied().unwrap_or(0);
    let mut statuses: Vec<_> = t.statuses.iter().collect();
    statuses.sort();
    println!(
        "connections={} duration={elapsed:.1}s acknowledged={acked} rate={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms statuses={statuses:?} io_errors={}",
        args.connections,
        acked as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        t.io_errors
    );
}

/// GETs the stats (no filter: every hour kept) over one keep-alive connection every `every`
/// (or as fast as answers come, if slower) until `deadline`; returns each latency in µs.
async fn hammer_stats(addr: &str, deadline: Instant, every: Duration) -> Vec<u64> {
    let mut lat = Vec::new();
    let mut tick = tokio::time::interval(every);
    let mut buf = vec![0u8; 256 * 1024];
    let Ok(mut stream) = TcpStream::connect(addr).await else { return lat };
    let req = format!("GET /api/feedback/stats HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    while Instant::now() < deadline {
        tick.tick().await;
        let t0 = Instant::now();
        if stream.write_all(req.as_bytes()).await.is_err() {
            break;
        }
        match read_response(&mut stream, &mut buf).await {
            Ok(200) => lat.push(t0.elapsed().as_micros() as u64),
            _ => break,
        }
    }
    lat
}

/// Reads one HTTP/1.1 response (with Content-Length) and returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<u16> {
    let mut have = 0usize;
    loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
        }
        have += n;
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| std::io::Error::other("bad head"))?;
            let status: u16 =
                head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other("bad status"))?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body_have = have - end - 4;
            while body_have < len {
                let n = stream.read(&mut buf[..]).await?;
                if n == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed in body"));
                }
                body_have += n;
            }
            return Ok(status);
        }
        if have == buf.len() {
            return Err(std::io::Error::other("head too large"));
        }
    }
}

fn read_ids(path: &PathBuf) -> Vec<String> {
    match std::fs::File::open(path) {
        Ok(f) => std::io::BufReader::new(f).lines().map_while(Result::ok).filter(|l| !l.is_empty()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Checks a data dir against the ids the load generator saw acknowledged; returns the exit code.
fn verify(data_dir: &std::path::Path, acked_path: &PathBuf, attempted_path: &PathBuf) -> i32 {
    let acked = read_ids(acked_path);
    let attempted: std::collections::HashSet<String> = read_ids(attempted_path).into_iter().collect();
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut counts: HashMap<String, u32> = HashMap::new();
    let (mut lines, mut bad_lines) = (0u64, 0u64);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            println!("FAIL {}: ends with a partial line", f.display());
            bad_lines += 1;
        }
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            match serde_json::from_slice::<shared::FeedbackRecord>(line) {
                Ok(r) => *counts.entry(r.submission.id).or_default() += 1,
                Err(e) => {
                    bad_lines += 1;
                    println!("FAIL {}: unreadable line ({e})", f.display());
                }
            }
        }
    }
    let acked_set: std::collections::HashSet<&String> = acked.iter().collect();
    let missing = acked_set.iter().filter(|id| !counts.contains_key(**id)).count();
    let twice = counts.values().filter(|&&c| c > 1).count();
    let never_sent = counts.keys().filter(|id| !attempted.contains(*id)).count();
    let unacked_present = counts.keys().filter(|id| !acked_set.contains(id)).count();
    println!(
        "segments={} lines={lines} distinct_ids={} acknowledged={} (acks incl. retries: {}) attempted={} missing_acknowledged={missing} stored_twice={twice} partial_or_bad_lines={bad_lines} unacknowledged_but_complete={unacked_present} never_sent={never_sent}",
        files.len(),
        counts.len(),
        acked_set.len(),
        acked.len(),
        attempted.len()
    );
    if missing == 0 && twice == 0 && bad_lines == 0 && never_sent == 0 {
        println!("OK: every acknowledged id is stored exactly once; no partial record remains");
        0
    } else {
        println!("FAIL");
        1
    }
}
