//! Batch analysis: reading pasted lines or a CSV/JSONL export (`input`), and summarising the
//! predictions — table order, label distribution, daily shares, CSV export (`results`).

pub mod input;
pub mod results;

pub use input::{InputError, InputFormat, Table};
pub use results::{BatchRow, DayShare, SortKey};
