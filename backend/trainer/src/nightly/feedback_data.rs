//! Feedback records → training and holdout examples.
//!
//! Records are grouped by text (trimmed): the same post labelled by several people, or twice by
//! one, counts once, with the majority label; a tie is dropped (no label to trust). Each group
//! goes to the holdout or to training by a hash of its smallest record id, so the split is the
//! same every night and a text never lands on both sides.

use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::FeedbackRecord;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledText {
    pub id: String,
    pub text: String,
    pub label: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedbackData {
    #[serde(skip)]
    pub train: Vec<LabelledText>,
    #[serde(skip)]
    pub holdout: Vec<LabelledText>,
    pub records: usize,
    pub unique_texts: usize,
    /// Texts with disagreeing labels settled by majority.
    pub conflicts_resolved: usize,
    /// Texts whose labels tied; left out.
    pub conflicts_dropped: usize,
    /// Records whose label is not one of the model's.
    pub unknown_labels: usize,
    pub train_examples: usize,
    pub holdout_examples: usize,
}

/// A number in [0, 1) from the id, stable across runs and machines.
pub fn holdout_hash(id: &str) -> f64 {
    let h = Sha256::digest(id.to_ascii_lowercase().as_bytes());
    let x = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

pub fn build(records: &[FeedbackRecord], labels: &[String], holdout_fraction: f64) -> FeedbackData {
    let mut data = FeedbackData { records: records.len(), ..Default::default() };
    // text → (smallest id, label → count)
    let mut groups: BTreeMap<&str, (String, BTreeMap<&str, usize>)> = BTreeMap::new();
    for r in records {
        let s = &r.submission;
        if !labels.contains(&s.label) {
            data.unknown_labels += 1;
            continue;
        }
        let id = s.id.to_ascii_lowercase();
        let g = groups.entry(s.text.trim()).or_insert_with(|| (id.clone(), BTreeMap::new()));
        if id < g.0 {
            g.0 = id;
        }
        *g.1.entry(s.label.as_str()).or_default() += 1;
    }
    data.unique_texts = groups.len();
    for (text, (id, votes)) in groups {
        let top = *votes.values().max().expect("a group has a vote");
        let winners: Vec<&str> = votes.iter().filter(|(_, &c)| c == top).map(|(l, _)| *l).collect();
        if votes.len() > 1 {
            if winners.len() > 1 {
                data.conflicts_dropped += 1;
                continue;
            }
            data.conflicts_resolved += 1;
        }
        let example = LabelledText { id: id.clone(), text: text.to_string(), label: winners[0].to_string() };
        if holdout_hash(&id) < holdout_fraction {
            data.holdout.push(example);
        } else {
            data.train.push(example);
        }
    }
    data.train_examples = data.train.len();
    data.holdout_examples = data.holdout.len();
    data
}

/// `{"text","label"}` lines, the trainer's JSONL dataset format.
pub fn to_jsonl(examples: &[LabelledText]) -> String {
    let mut out = String::new();
    for e in examples {
        out.push_str(&serde_json::json!({"id": e.id, "text": e.text, "label": e.label}).to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u32, text: &str, label: &str) -> FeedbackRecord {
        serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-{n:012}"), "text": text, "predicted": "neutral",
            "scores": {"negative": 0.3, "neutral": 0.4, "positive": 0.3},
            "label": label, "model_version": "v1", "received_at": "2026-11-28T00:00:00.000Z"
        }))
        .unwrap()
    }

    fn labels() -> Vec<String> {
        ["negative", "neutral", "positive"].map(String::from).to_vec()
    }

    #[test]
    fn duplicates_and_conflicts_are_settled_by_majority_and_ties_dropped() {
        let records = vec![
            rec(1, "great phone", "positive"),
            rec(2, " great phone ", "positive"),
            rec(3, "great phone", "negative"),
            rec(4, "meh", "neutral"),
            rec(5, "meh", "negative"),
            rec(6, "awful", "negative"),
            rec(7, "odd", "sarcastic"),
        ];
        let d = build(&records, &labels(), 0.5);
        assert_eq!((d.records, d.unique_texts, d.unknown_labels), (7, 3, 1));
        assert_eq!((d.conflicts_resolved, d.conflicts_dropped), (1, 1));
        let all: Vec<&LabelledText> = d.train.iter().chain(&d.holdout).collect();
        assert_eq!(all.len(), 2);
        let phone = all.iter().find(|e| e.text == "great phone").unwrap();
        assert_eq!(phone.label, "positive");
        assert_eq!(phone.id, "00000000-0000-4000-8000-000000000001");
    }

    #[test]
    fn the_split_follows_the_id_hash_and_is_stable() {
        let records: Vec<FeedbackRecord> = (0..2000).map(|i| rec(i, &format!("text {i}"), "positive")).collect();
        let a = build(&records, &labels(), 0.2);
        let mut shuffled = records.clone();
        shuffled.reverse();
        let b = build(&shuffled, &labels(), 0.2);
        let ids = |v: &[LabelledText]| v.iter().map(|e| e.id.clone()).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(ids(&a.holdout), ids(&b.holdout));
        // 2000 draws at p = 0.2: 400 ± 18 (1 sd); 5 sd either side.
        assert!((310..=490).contains(&a.holdout.len()), "{}", a.holdout.len());
        for e in &a.holdout {
            assert!(holdout_hash(&e.id) < 0.2);
        }
    }
}
