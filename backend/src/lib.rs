//! The native side of Sentiment Monitor: the trainer's pieces and the feedback server's pieces.
//! The two binaries in `src/bin/` only parse arguments and wire these together.

pub mod checkpoint;
pub mod data;
pub mod hub_download;
pub mod import;
pub mod predict;
pub mod clock;
pub mod metrics;
