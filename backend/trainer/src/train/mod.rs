//! Full fine-tuning in candle: AdamW with PyTorch's formula, global-norm clipping, linear
//! warm-up and decay, seeded dropout, length-bucketed batches, mean cross-entropy; and the
//! `train` run around it (HF-layout output, resumable checkpoints, metrics and a plot).

pub mod batches;
pub mod interpolate;
pub mod optim;
pub mod plot;
pub mod run;
pub mod state;
pub mod step;

pub use interpolate::interpolate;
pub use run::{parse_preprocess, train, Progress, TrainOptions, TrainSummary};
pub use step::{StepStats, Trainable};

use crate::bundle_writer::BundleWriteError;
use crate::checkpoint::CheckpointError;
use crate::data::DataError;
use model::tokenize::TokenizeError;
use model::ModelError;
use std::path::PathBuf;

/// Why training failed. Large causes are boxed so `Result<_, TrainError>` stays small.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training failed: {0}")]
    Candle(Box<candle_core::Error>),
    #[error(transparent)]
    Model(Box<ModelError>),
    #[error(transparent)]
    Checkpoint(Box<CheckpointError>),
    #[error(transparent)]
    Data(Box<DataError>),
    #[error(transparent)]
    Tokenize(Box<TokenizeError>),
    #[error(transparent)]
    Write(Box<BundleWriteError>),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {detail}", path.display())]
    State { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
}

macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for TrainError {
            fn from(e: $ty) -> Self {
                TrainError::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(
    Candle(candle_core::Error),
    Model(ModelError),
    Checkpoint(CheckpointError),
    Data(DataError),
    Tokenize(TokenizeError),
    Write(BundleWriteError)
);

/// Mixes a seed with a counter into an independent seed (SplitMix64's finaliser), so each
/// step's dropout and each epoch's shuffle follow from `(seed, step)` alone: a resumed run
/// draws exactly what an uninterrupted one would.
pub fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
