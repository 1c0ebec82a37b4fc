//! `fake_hub` (`cargo run -p backend --example fake_hub`): a local server speaking the Hub's HTTP API (see `backend::hub::fake`), for tests
//! and for checking its contract with the official Python `huggingface_hub` client.

use backend::hub::fake::{FakeHub, Faults};
use clap::Parser;
use std::net::SocketAddr;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Files at least this large must go through LFS (0 = never).
    #[arg(long, default_value_t = 0)]
    lfs_threshold: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hub = FakeHub::start(args.addr, Faults { lfs_threshold: args.lfs_threshold, ..Faults::default() }).await?;
    println!("fake-hub listening on {}", hub.endpoint());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
