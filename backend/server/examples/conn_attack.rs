//! Half-open connections against `sentiment-server` (a second process on loopback), for
//! `scripts/attack-test.sh`: opens `--connections N`, sends half a request header on each and
//! then nothing, and notes when the server closes each one. Stops by itself after `--hold`.
//!
//! `cargo run --release -p sentiment-server --example conn_attack -- --url http://127.0.0.1:8080
//!   --connections 2000 --hold 20s`
//!
//! Prints one line: `opened=.. closed_by_server=.. still_open=.. refused=.. close_p50_s=..
//! close_max_s=..`; the script checks it.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
    };
    let addr = flag("--url", "http://127.0.0.1:8080").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let n: usize = flag("--connections", "2000").parse().expect("--connections N");
    let hold = Duration::from_secs_f64(flag("--hold", "20s").trim_end_matches('s').parse().expect("--hold 20s"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                // Ok(Some(t)): closed by the server after t; Ok(None): still open at the end;
                // Err: could not connect or was closed before the half header went out.
                let mut s = match TcpStream::connect(&addr).await {
                    Ok(s) => s,
                    Err(_) => return Err(()),
                };
                let opened = Instant::now();
                let half = format!("POST /api/feedback HTTP/1.1\r\nhost: {addr}\r\nx-slow-{i}: ");
                if s.write_all(half.as_bytes()).await.is_err() {
                    return Err(());
                }
                let mut buf = [0u8; 512];
                let left = hold.saturating_sub(started.elapsed());
                match tokio::time::timeout(left, s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => Ok(Some(opened.elapsed())),
                    // An answer (e.g. 408) then the close.
                    Ok(Ok(_)) => {
                        let _ = tokio::time::timeout(left, s.read(&mut buf)).await;
                        Ok(Some(opened.elapsed()))
                    }
                    Err(_) => Ok(None),
                }
            }));
            if i % 100 == 99 {
                tokio::task::yield_now().await;
            }
        }
        let (mut closed, mut open, mut refused) = (Vec::new(), 0, 0);
        for t in tasks {
            match t.await.expect("task") {
                Ok(Some(d)) => closed.push(d.as_secs_f64()),
                Ok(None) => open += 1,
                Err(()) => refused += 1,
            }
        }
        closed.sort_by(f64::total_cmp);
        let pct = |p: f64| closed.get(((closed.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
        println!(
            "opened={} closed_by_server={} still_open={open} refused={refused} close_p50_s={:.2} close_max_s={:.2} \
             close_min_s={:.2}",
            n - refused,
            closed.len(),
            pct(0.5),
            pct(1.0),
            pct(0.0)
        );
    });
}
