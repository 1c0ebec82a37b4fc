//! Feedback records → training and holdout examples.
//!
//! Records are grouped by text (trimmed): the same post labelled by several people, or twice by
//! one, counts once, with the majority label; a tie is dropped (no label to trust). Each group
//! goes to the holdout (which judges the challenger), the validation split (on which the night's
//! choices are made) or training by a hash of its smallest record id, so the split is the same
//! every night and a text never lands on two sides. Texts that are the gold or guard set's, once
//! normalised (`normalise`), never reach training or validation: a model must not be trained
//! or chosen on what judges it.

use super::config::SplitConfig;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::FeedbackRecord;
use std::collections::{BTreeMap, HashSet};

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
    pub validation: Vec<LabelledText>,
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
    /// Texts left out of training and validation because the gold or guard set holds them
    /// (after `normalise`).
    pub gold_like_removed: usize,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub holdout_examples: usize,
}

/// A number in [0, 1) from the id, stable across runs and machines.
pub fn holdout_hash(id: &str) -> f64 {
    let h = Sha256::digest(id.to_ascii_lowercase().as_bytes());
    let x = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A text reduced to what makes it the same post: lower case, without mentions, links, `RT`,
/// HTML entities, TweetEval's literal `\uXXXX` escapes, punctuation and extra spaces.
pub fn normalise(text: &str) -> String {
    let mut t = text.to_lowercase();
    for entity in ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"] {
        t = t.replace(entity, " ");
    }
    let mut out = String::with_capacity(t.len());
    for token in t.split_whitespace() {
        let bare = token.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '@');
        if (bare.starts_with('@') && bare.len() > 1) || bare.starts_with("http") || bare == "rt" {
            continue;
        }
        let mut chars = token.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek() == Some(&'u') {
                // A literal `\u2019`: skip `u` and four hex digits.
                chars.next();
                for _ in 0..4 {
                    chars.next_if(char::is_ascii_hexdigit);
                }
                out.push(' ');
            } else {
                out.push(if c.is_alphanumeric() { c } else { ' ' });
            }
        }
        out.push(' ');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Groups, settles and splits `records`: a hash below `split.holdout_fraction` goes to the
/// holdout, the next `split.validation_fraction` to validation, the rest to training. Texts
/// whose `normalise`d form is in `protected` (the gold and guard sets') stay out of training
/// and validation.
pub fn build(
    records: &[FeedbackRecord],
    labels: &[String],
    split: &SplitConfig,
    protected: &HashSet<String>,
) -> FeedbackData {
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
        let h = holdout_hash(&id);
        if h < split.holdout_fraction {
            data.holdout.push(example);
        } else if protected.contains(&normalise(text)) {
            data.gold_like_removed += 1;
        } else if h < split.holdout_fraction + split.validation_fraction {
            data.validation.push(example);
        } else {
            data.train.push(example);
        }
    }
    data.train_examples = data.train.len();
    data.validation_examples = data.validation.len();
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
        let d = build(
            &records,
            &labels(),
            &SplitConfig { holdout_fraction: 0.5, validation_fraction: 0.0 },
            &HashSet::new(),
        );
        assert_eq!((d.records, d.unique_texts, d.unknown_labels), (7, 3, 1));
        assert_eq!((d.conflicts_resolved, d.conflicts_dropped), (1, 1));
        let all: Vec<&LabelledText> = d.train.iter().chain(&d.holdout).collect();
        assert_eq!(all.len(), 2);
        let phone = all.iter().find(|e| e.text == "great phone").unwrap();
        assert_eq!(phone.label, "positive");
        assert_eq!(phone.id, "00000000-0000-4000-8000-000000000001");
    }

    #[test]
    fn normalising_ignores_case_mentions_links_entities_and_punctuation() {
        let gold = "@user The flight was LATE again &amp; nobody cared!!! http://t.co/x \\u2019 ";
        assert_eq!(normalise(gold), "the flight was late again nobody cared");
        for same in
            ["the flight was late again, nobody cared", "RT @united: The  flight was late again... nobody cared"]
        {
            assert_eq!(normalise(same), normalise(gold), "{same}");
        }
        assert_ne!(normalise("the flight was late again"), normalise(gold));
    }

    #[test]
    fn gold_like_texts_never_reach_training_or_validation() {
        let records: Vec<FeedbackRecord> = (0..400).map(|i| rec(i, &format!("Post number {i}!"), "positive")).collect();
        let protected: HashSet<String> =
            (0..400).step_by(2).map(|i| normalise(&format!("@user post number {i}"))).collect();
        let split = SplitConfig { holdout_fraction: 0.2, validation_fraction: 0.2 };
        let d = build(&records, &labels(), &split, &protected);
        for e in d.train.iter().chain(&d.validation) {
            assert!(!protected.contains(&normalise(&e.text)), "{}", e.text);
        }
        // The holdout keeps them (it trains nothing); everything else is counted.
        assert!(d.holdout.iter().any(|e| protected.contains(&normalise(&e.text))));
        assert_eq!(d.train.len() + d.validation.len() + d.holdout.len() + d.gold_like_removed, 400);
        assert!(d.gold_like_removed > 100, "{}", d.gold_like_removed);
    }

    #[test]
    fn the_split_follows_the_id_hash_and_is_stable() {
        let records: Vec<FeedbackRecord> = (0..2000).map(|i| rec(i, &format!("text {i}"), "positive")).collect();
        let split = SplitConfig { holdout_fraction: 0.2, validation_fraction: 0.15 };
        let a = build(&records, &labels(), &split, &HashSet::new());
        let mut shuffled = records.clone();
        shuffled.reverse();
        let b = build(&shuffled, &labels(), &split, &HashSet::new());
        let ids = |v: &[LabelledText]| v.iter().map(|e| e.id.clone()).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(ids(&a.holdout), ids(&b.holdout));
        assert_eq!(ids(&a.validation), ids(&b.validation));
        // 2000 draws at p = 0.2: 400 ± 18 (1 sd); at p = 0.15: 300 ± 16; 5 sd either side.
        assert!((310..=490).contains(&a.holdout.len()), "{}", a.holdout.len());
        assert!((220..=380).contains(&a.validation.len()), "{}", a.validation.len());
        assert_eq!(a.train.len() + a.validation.len() + a.holdout.len(), 2000);
        for e in &a.holdout {
            assert!(holdout_hash(&e.id) < 0.2);
        }
        for e in &a.validation {
            assert!((0.2..0.35).contains(&holdout_hash(&e.id)));
        }
    }
}
