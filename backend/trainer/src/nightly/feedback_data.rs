//! Feedback records → training, validation and holdout examples.
//!
//! Votes are counted per client: each record carries its sender's pseudonymous key (`client`,
//! set by the server; a record without one, stored before keys existed, is its own client), a
//! client counts once per text (its latest label), and one client keeps at most
//! `ClientsConfig::cap` votes, so a client with fresh ids can neither outvote the others nor fill
//! the training data. Each client goes to the holdout (which judges the challenger), the
//! validation split (on which the night's choices are made) or training by a hash of its key,
//! so no client's records judge a model trained on its other records, and the split is the same
//! every night. A text voted on from two sides stays on one (holdout, else validation): the
//! other side's votes on it are dropped, so a text never lands on two sides. The votes on a text
//! are settled by majority; a tie is dropped (no label to trust). Texts that are the gold or
//! guard set's, once normalised (`normalise`), never reach training or validation: a model must
//! not be trained or chosen on what judges it.

use super::config::{ClientsConfig, SplitConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::feedback::parse_timestamp_millis;
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
    /// Distinct texts among the votes kept (after the cap).
    pub unique_texts: usize,
    /// Clients that sent a record with a known label (a record without a client key counts as
    /// one client).
    pub clients: usize,
    /// Records without a client key (stored before the server wrote one).
    pub records_without_client: usize,
    /// Records replaced by the same client's later vote on the same text.
    pub repeated_votes: usize,
    /// The most votes one client keeps: `max(cap_min, cap_share x votes)`.
    pub client_cap: usize,
    /// Clients with more votes than `client_cap`, and the votes dropped from them.
    pub clients_capped: usize,
    pub records_capped: usize,
    /// The largest client's share of all votes, before the cap.
    pub largest_client_share: f64,
    /// Votes dropped because the same text was voted on by a client on a side that outranks
    /// theirs (holdout, then validation, then training).
    pub cross_side_votes: usize,
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

/// Which side a client's votes go to; the order is the precedence when a text has votes from
/// several sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Holdout,
    Validation,
    Train,
}

/// One client's latest vote on one text.
struct Vote<'a> {
    received_ms: i64,
    id: String,
    label: &'a str,
}

/// Counts, caps, settles and splits `records`: a client whose key hashes below
/// `split.holdout_fraction` goes to the holdout, the next `split.validation_fraction` to
/// validation, the rest to training. Texts whose `normalise`d form is in `protected` (the gold
/// and guard sets') stay out of training and validation.
pub fn build(
    records: &[FeedbackRecord],
    labels: &[String],
    split: &SplitConfig,
    clients: &ClientsConfig,
    protected: &HashSet<String>,
) -> FeedbackData {
    let mut data = FeedbackData { records: records.len(), ..Default::default() };
    // client → text → its latest vote
    let mut by_client: BTreeMap<String, BTreeMap<&str, Vote>> = BTreeMap::new();
    for r in records {
        let s = &r.submission;
        if !labels.contains(&s.label) {
            data.unknown_labels += 1;
            continue;
        }
        let id = s.id.to_ascii_lowercase();
        let client = match &r.client {
            Some(key) => key.to_ascii_lowercase(),
            None => {
                data.records_without_client += 1;
                id.clone()
            }
        };
        let vote = Vote { received_ms: parse_timestamp_millis(&r.received_at).unwrap_or(0), id, label: &s.label };
        let votes = by_client.entry(client).or_default();
        match votes.get(s.text.trim()) {
            Some(old) => {
                data.repeated_votes += 1;
                if (vote.received_ms, &vote.id) > (old.received_ms, &old.id) {
                    votes.insert(s.text.trim(), vote);
                }
            }
            None => {
                votes.insert(s.text.trim(), vote);
            }
        }
    }
    data.clients = by_client.len();
    let total: usize = by_client.values().map(BTreeMap::len).sum();
    data.client_cap = clients.cap(total);
    let largest = by_client.values().map(BTreeMap::len).max().unwrap_or(0);
    data.largest_client_share = if total == 0 { 0.0 } else { largest as f64 / total as f64 };

    // text → side → (smallest id, label → count)
    type Tally<'a> = BTreeMap<Side, (String, BTreeMap<&'a str, usize>)>;
    let mut texts: BTreeMap<&str, Tally> = BTreeMap::new();
    for (client, votes) in &by_client {
        let mut kept: Vec<(&str, &Vote)> = votes.iter().map(|(t, v)| (*t, v)).collect();
        if kept.len() > data.client_cap {
            // Which votes stay is fixed by a hash, not by the order the client sent them in.
            kept.sort_by(|a, b| {
                holdout_hash(&format!("{client}\n{}", a.0)).total_cmp(&holdout_hash(&format!("{client}\n{}", b.0)))
            });
            data.clients_capped += 1;
            data.records_capped += kept.len() - data.client_cap;
            kept.truncate(data.client_cap);
        }
        let h = holdout_hash(client);
        let side = if h < split.holdout_fraction {
            Side::Holdout
        } else if h < split.holdout_fraction + split.validation_fraction {
            Side::Validation
        } else {
            Side::Train
        };
        for (text, vote) in kept {
            let g = texts.entry(text).or_default().entry(side).or_insert_with(|| (vote.id.clone(), BTreeMap::new()));
            if vote.id < g.0 {
                g.0 = vote.id.clone();
            }
            *g.1.entry(vote.label).or_default() += 1;
        }
    }
    data.unique_texts = texts.len();
    for (text, mut sides) in texts {
        let (side, (id, votes)) = sides.pop_first().expect("a text has a vote");
        data.cross_side_votes += sides.values().map(|(_, v)| v.values().sum::<usize>()).sum::<usize>();
        let top = *votes.values().max().expect("a side has a vote");
        let winners: Vec<&str> = votes.iter().filter(|(_, &c)| c == top).map(|(l, _)| *l).collect();
        if votes.len() > 1 {
            if winners.len() > 1 {
                data.conflicts_dropped += 1;
                continue;
            }
            data.conflicts_resolved += 1;
        }
        let example = LabelledText { id, text: text.to_string(), label: winners[0].to_string() };
        match side {
            Side::Holdout => data.holdout.push(example),
            _ if protected.contains(&normalise(text)) => data.gold_like_removed += 1,
            Side::Validation => data.validation.push(example),
            Side::Train => data.train.push(example),
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

    /// A record from `client` received `second` seconds into the night.
    fn vote(n: u32, client: &str, text: &str, label: &str, second: u32) -> FeedbackRecord {
        FeedbackRecord {
            client: Some(client.into()),
            received_at: format!("2026-11-28T00:{:02}:{:02}.000Z", second / 60, second % 60),
            ..rec(n, text, label)
        }
    }

    /// Everything on the training side: the votes alone decide.
    const ALL_TRAIN: SplitConfig = SplitConfig { holdout_fraction: 0.0, validation_fraction: 0.0 };

    fn labels_of(d: &FeedbackData) -> BTreeMap<String, String> {
        d.train.iter().chain(&d.validation).chain(&d.holdout).map(|e| (e.text.clone(), e.label.clone())).collect()
    }

    #[test]
    fn votes_count_once_per_client_with_its_latest_label_and_ties_are_dropped() {
        let records = vec![
            vote(1, "a", "great phone", "positive", 1),
            vote(2, "b", " great phone ", "positive", 2),
            vote(3, "c", "great phone", "negative", 3),
            // One client with fresh ids cannot outvote two others.
            vote(4, "liar", "meh", "negative", 4),
            vote(5, "liar", "meh", "negative", 5),
            vote(6, "liar", "meh", "negative", 6),
            vote(7, "b", "meh", "neutral", 7),
            vote(8, "c", "meh", "neutral", 8),
            // A client that changes its mind counts once, with its latest label: a tie, dropped.
            vote(9, "a", "odd", "positive", 9),
            vote(10, "a", "odd", "negative", 20),
            vote(11, "b", "odd", "positive", 11),
            // Records stored before client keys: each its own client.
            rec(12, "awful", "negative"),
            rec(13, "awful", "negative"),
            rec(14, "awful", "neutral"),
            vote(15, "a", "sarcastic?", "sarcastic", 15),
        ];
        let d = build(&records, &labels(), &ALL_TRAIN, &ClientsConfig::default(), &HashSet::new());
        assert_eq!((d.records, d.unique_texts, d.unknown_labels, d.records_without_client), (15, 4, 1, 3));
        assert_eq!((d.clients, d.repeated_votes), (7, 3));
        assert_eq!((d.conflicts_resolved, d.conflicts_dropped), (3, 1));
        let got = labels_of(&d);
        let want: BTreeMap<String, String> = [("great phone", "positive"), ("meh", "neutral"), ("awful", "negative")]
            .map(|(t, l)| (t.to_string(), l.to_string()))
            .into();
        assert_eq!(got, want);
        let phone = d.train.iter().find(|e| e.text == "great phone").unwrap();
        assert_eq!(phone.id, "00000000-0000-4000-8000-000000000001");
    }

    #[test]
    fn one_client_keeps_at_most_the_cap_and_the_report_counts_the_rest() {
        // 100 honest clients with one vote each; one client with 100 fresh-id votes.
        let mut records: Vec<FeedbackRecord> =
            (0..100).map(|i| vote(i, &format!("c{i}"), &format!("honest {i}"), "positive", 0)).collect();
        records.extend((0..100).map(|i| vote(1000 + i, "liar", &format!("lie {i}"), "negative", 1)));
        let clients = ClientsConfig { cap_share: 0.05, cap_min: 20 };
        let d = build(&records, &labels(), &ALL_TRAIN, &clients, &HashSet::new());
        assert_eq!(d.client_cap, 20, "max(20, 5 % of 200 votes)");
        assert_eq!((d.clients, d.clients_capped, d.records_capped), (101, 1, 80));
        assert!((d.largest_client_share - 0.5).abs() < 1e-12);
        assert_eq!(d.train.iter().filter(|e| e.text.starts_with("lie")).count(), 20);
        assert_eq!(d.train.len(), 120);
        // Which 20 stay does not depend on the order the client sent them in.
        let mut reversed = records.clone();
        reversed.reverse();
        let again = build(&reversed, &labels(), &ALL_TRAIN, &clients, &HashSet::new());
        assert_eq!(labels_of(&again), labels_of(&d));
    }

    #[test]
    fn the_split_is_by_client_and_a_text_never_lands_on_two_sides() {
        // 300 clients with 5 texts each; every text also voted on by the next client.
        let mut records = Vec::new();
        for c in 0..300u32 {
            for t in 0..5 {
                let text = format!("text {c} {t}");
                records.push(vote(c * 10 + t, &format!("k{c}"), &text, "positive", 0));
                records.push(vote(100_000 + c * 10 + t, &format!("k{}", (c + 1) % 300), &text, "positive", 0));
            }
        }
        let split = SplitConfig { holdout_fraction: 0.2, validation_fraction: 0.15 };
        let d = build(&records, &labels(), &split, &ClientsConfig::default(), &HashSet::new());
        let side_of = |c: u32| {
            let h = holdout_hash(&format!("k{c}"));
            if h < 0.2 {
                0
            } else if h < 0.35 {
                1
            } else {
                2
            }
        };
        let sides = [&d.holdout, &d.validation, &d.train];
        let mut seen = HashSet::new();
        for (side, examples) in sides.iter().enumerate() {
            for e in examples.iter() {
                assert!(seen.insert(e.text.clone()), "{} on two sides", e.text);
                // The text's side is one of its two voters' sides, the higher-ranked one.
                let c: u32 = e.text.split(' ').nth(1).unwrap().parse().unwrap();
                let want = side_of(c).min(side_of((c + 1) % 300));
                assert_eq!(side, want, "{}", e.text);
            }
        }
        assert_eq!(seen.len(), 1500);
        assert!(d.cross_side_votes > 0 && d.holdout.len() > 150, "{} {}", d.cross_side_votes, d.holdout.len());
        // Every holdout label comes from holdout clients only: no vote of a training-side client
        // judges the challenger.
        assert_eq!(d.holdout.len() + d.validation.len() + d.train.len(), 1500);
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
        let d = build(&records, &labels(), &split, &ClientsConfig::default(), &protected);
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
        let a = build(&records, &labels(), &split, &ClientsConfig::default(), &HashSet::new());
        let mut shuffled = records.clone();
        shuffled.reverse();
        let b = build(&shuffled, &labels(), &split, &ClientsConfig::default(), &HashSet::new());
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
