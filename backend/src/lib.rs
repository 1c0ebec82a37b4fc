//! The native side of Sentiment Monitor: the trainer's pieces and the feedback server's pieces.
//! The two binaries in `src/bin/` only parse arguments and wire these together.

pub mod checkpoint;
pub mod clock;
pub mod data;
pub mod feedback_log;
pub mod feedback_sync;
pub mod heap;
pub mod hub;
pub mod hub_download;
pub mod import;
pub mod mapped_weights;
pub mod metrics;
pub mod monitor;
pub mod nightly;
pub mod predict;
pub mod registry;
pub mod server;
pub mod threads;
pub mod train;
