//! `sentiment-server`: collects users' corrections durably and syncs them to a Hub dataset.
//!
//! - [`http`]: the service (`app` builds the whole `Router`): feedback API, stats, health,
//!   Prometheus `/metrics`, rate limit, static files and the bundle at `/model/`;
//! - [`feedback_log`]: the local log, where a record is fsync'd before it is acknowledged, and
//!   its [`sync`](feedback_log::sync) to the Hub logs dataset;
//! - [`client_key`]: the pseudonymous client key each stored record carries.
//!
//! `src/main.rs` only parses arguments and wires these together. The server links no model code.

pub mod client_key;
pub mod data_dir;
pub mod feedback_log;
pub mod http;

pub use http::{app, AppState, ServerConfig};
