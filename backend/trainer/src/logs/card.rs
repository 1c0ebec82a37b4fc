//! The logs dataset's card (`README.md`): YAML front matter whose `configs` point `data_files`
//! at `data/**/*.jsonl` and whose `dataset_info.features` is the record schema, so the Hub's
//! dataset viewer and `datasets.load_dataset` read the feedback as one table; then what the
//! records are, in prose.
//!
//! The schema is made from [`shared::FeedbackRecord`] itself (a record with every field set,
//! serialized): a field added to the record type changes the card.

use shared::feedback::{FeedbackRecord, FeedbackSubmission};
use std::fmt::Write;

pub const CARD_FILE: &str = "README.md";

/// A record with every optional field present, as stored.
fn example(labels: &[String]) -> serde_json::Value {
    let record = FeedbackRecord {
        submission: FeedbackSubmission {
            id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            text: "text".into(),
            predicted: labels[0].clone(),
            scores: labels.iter().map(|l| (l.clone(), 0.5)).collect(),
            label: labels[0].clone(),
            model_version: "v".into(),
            note: Some("note".into()),
        },
        received_at: "2026-01-01T00:00:00.000Z".into(),
        client: Some("0123456789abcdef".into()),
    };
    serde_json::to_value(record).expect("a record serializes")
}

/// `datasets` feature lines for one JSON value, indented by `indent` spaces.
fn feature(out: &mut String, name: &str, value: &serde_json::Value, indent: usize) {
    let pad = " ".repeat(indent);
    let _ = writeln!(out, "{pad}- name: {name}");
    match value {
        serde_json::Value::Object(fields) => {
            let _ = writeln!(out, "{pad}  struct:");
            for (k, v) in fields {
                feature(out, k, v, indent + 4);
            }
        }
        serde_json::Value::Number(_) => {
            let _ = writeln!(out, "{pad}  dtype: float64");
        }
        serde_json::Value::Bool(_) => {
            let _ = writeln!(out, "{pad}  dtype: bool");
        }
        _ => {
            let _ = writeln!(out, "{pad}  dtype: string");
        }
    }
}

/// The card for a logs dataset of a model with `labels`.
pub fn dataset_card(labels: &[String]) -> String {
    let mut y = String::from("---\n");
    y.push_str("pretty_name: Sentiment Monitor feedback\n");
    // Posts and corrections sent by the page's users: no licence can be assumed for them.
    y.push_str("license: other\n");
    y.push_str("task_categories:\n  - text-classification\n");
    y.push_str("tags:\n  - sentiment-monitor\n  - human-feedback\n");
    y.push_str("configs:\n  - config_name: default\n    data_files:\n      - split: train\n        path: \"data/**/*.jsonl\"\n");
    y.push_str("dataset_info:\n  config_name: default\n  features:\n");
    if let serde_json::Value::Object(fields) = example(labels) {
        for (k, v) in &fields {
            feature(&mut y, k, v, 4);
        }
    }
    y.push_str("---\n\n");
    y.push_str("# Sentiment Monitor feedback\n\n");
    y.push_str(
        "Corrections (and confirmations) of the sentiment model's predictions, sent from the Sentiment \
         Monitor page to its feedback server, which stores each durably and commits them here in batches. \
         The nightly retraining reads them to decide whether the model needs retraining, and trains on them.\n\n",
    );
    y.push_str("## Records\n\nOne JSON object per line:\n\n");
    y.push_str("| field | what |\n|---|---|\n");
    y.push_str("| `id` | the client's UUID for the submission (its idempotency key: a record appears once) |\n");
    y.push_str("| `text` | the post, as the user analysed it |\n");
    let _ = writeln!(y, "| `predicted` | the label the model gave ({}) |", labels.join(", "));
    y.push_str("| `scores` | the model's score for every label |\n");
    y.push_str("| `label` | the label the user says is right |\n");
    y.push_str("| `model_version` | the model version that predicted (see the model repo's `registry.json`) |\n");
    y.push_str("| `note` | the user's optional comment |\n");
    y.push_str("| `received_at` | when the server stored it (RFC 3339, UTC) |\n");
    y.push_str(
        "| `client` | the sender's pseudonymous key: 16 hex digits of a keyed hash (HMAC-SHA256, with the \
         server's secret) of its address; never the address itself. Absent in records stored before it \
         existed |\n\n",
    );
    y.push_str(
        "## Files\n\n`data/<instance-id>/` holds one server replica's records: `<NNNNNNNN>.jsonl` as the server \
         commits them (its log segment number), and `<FFFFFFFF>-<LLLLLLLL>.jsonl`, segments `FFFFFFFF` to \
         `LLLLLLLL` merged into one file by `sentiment-trainer compact` (nightly, a day at a time), so a folder \
         keeps a few hundred files after years of five-minute syncs.\n",
    );
    y
}
