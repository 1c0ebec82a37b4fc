//! `sentiment-trainer`: everything that runs a model natively.
//!
//! - a model in: [`checkpoint`] (HF-layout directories), [`import`] (from the Hub or a
//!   directory) and [`bundle_writer`] (quantize, write `manifest.json` + `model.gguf` +
//!   `tokenizer.json`);
//! - a model at work: [`predict`] (over [`mapped_weights`]), [`eval`] (accuracy, macro recall,
//!   macro F1), [`data`] (labelled datasets), [`faithfulness`] (of `model::explain`'s word
//!   weights);
//! - the loop: [`train`], [`monitor`], [`nightly`], [`registry`] (the model store),
//!   [`first_champion`] (an empty store's first model), [`logs`] (the logs dataset's compaction
//!   and card);
//! - the process: [`heap`], [`threads`] and [`cpu`] (the settings `main` applies through
//!   [`apply_process_settings`]), [`location`] (a local path or a Hub repo).
//!
//! `src/main.rs` only parses arguments and wires these together. The Hub client is the `hub`
//! crate's.

pub mod bundle_writer;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod eval;
pub mod faithfulness;
pub mod first_champion;
pub mod heap;
pub mod import;
pub mod location;
pub mod logs;
pub mod mapped_weights;
pub mod monitor;
pub mod nightly;
pub mod predict;
pub mod registry;
pub mod threads;
pub mod train;

/// The process settings of `sentiment-trainer`, applied first thing in `main` (and by its
/// benchmarks, so that their figures are its): freed memory stays for reuse
/// ([`heap::keep_freed_memory`]), candle's own pool spins briefly
/// ([`threads::short_spin_for_candle_pool`]), rayon's threads stay awake through each forward
/// ([`threads::spin_workers_in_forwards`]) and the Q8_0 product may use AMX tiles
/// ([`cpu::enable_amx_unless_disabled`]). Call once, before any other thread starts.
pub fn apply_process_settings() {
    heap::keep_freed_memory();
    threads::short_spin_for_candle_pool();
    threads::spin_workers_in_forwards();
    cpu::enable_amx_unless_disabled();
}
