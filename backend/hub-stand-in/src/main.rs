//! `hub-stand-in` (`cargo run -p hub-stand-in`): a local server speaking the Hub's HTTP API (see
//! the library), for scripts and for checking its contract with the official Python
//! `huggingface_hub` client (`scripts/hub-contract.sh`).

use clap::Parser;
use hub_stand_in::{Faults, HubStandIn};
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
    /// Entries per page of a tree listing (0 = the Hub's 1,000).
    #[arg(long, default_value_t = 0)]
    tree_page_size: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hub = HubStandIn::start(
        args.addr,
        Faults { lfs_threshold: args.lfs_threshold, tree_page_size: args.tree_page_size, ..Faults::default() },
    )
    .await?;
    println!("hub-stand-in listening on {} (content delivery on {})", hub.endpoint(), hub.cdn_endpoint());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
