//! What the page shows after a batch: rows in a chosen order, the label distribution, the daily
//! share of each label (the reputation trend), and a CSV export.

use crate::batch::input::Entry;
use crate::protocol::Prediction;
use serde::{Deserialize, Serialize};
use shared::feedback::{format_timestamp_millis, parse_timestamp_millis};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// Position in the input (1-based), the default order.
    pub index: usize,
    pub text: String,
    /// The date cell as given.
    pub date: Option<String>,
    /// The UTC day (`YYYY-MM-DD`) of `date`, when it parses.
    pub day: Option<String>,
    pub label: String,
    /// In the manifest's label order.
    pub scores: Vec<f64>,
}

impl BatchRow {
    pub fn new(index: usize, entry: Entry, prediction: Prediction) -> Self {
        let day = entry.date.as_deref().and_then(day_of);
        BatchRow { index, text: entry.text, date: entry.date, day, label: prediction.label, scores: prediction.scores }
    }

    /// The predicted label's score.
    pub fn confidence(&self) -> f64 {
        self.scores.iter().cloned().fold(0.0, f64::max)
    }

    pub fn prediction(&self) -> Prediction {
        Prediction { label: self.label.clone(), scores: self.scores.clone() }
    }
}

/// The UTC day of a date cell: RFC 3339 / `YYYY-MM-DD` exactly, or a cell that starts with a
/// `YYYY-MM-DD` date (e.g. `2024-01-02 10:00`, with no zone: its own calendar day).
pub fn day_of(cell: &str) -> Option<String> {
    let cell = cell.trim();
    if let Some(ms) = parse_timestamp_millis(cell) {
        return Some(format_timestamp_millis(ms)[..10].to_string());
    }
    let head = cell.get(..10)?;
    parse_timestamp_millis(head).map(|_| head.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Index,
    Text,
    Date,
    Label,
    /// The predicted label's score.
    Confidence,
    /// The score of the label at this position.
    Score(usize),
}

pub fn sort_rows(rows: &mut [BatchRow], key: SortKey, descending: bool) {
    rows.sort_by(|a, b| compare(a, b, key, descending));
}

/// The order of two rows by `key`; ties keep input order.
pub fn compare(a: &BatchRow, b: &BatchRow, key: SortKey, descending: bool) -> std::cmp::Ordering {
    let ord = match key {
        SortKey::Index => a.index.cmp(&b.index),
        SortKey::Text => a.text.to_lowercase().cmp(&b.text.to_lowercase()),
        // Rows without a parsable day sort last in ascending order.
        SortKey::Date => (a.day.is_none(), &a.day, &a.date).cmp(&(b.day.is_none(), &b.day, &b.date)),
        SortKey::Label => a.label.cmp(&b.label),
        SortKey::Confidence => a.confidence().total_cmp(&b.confidence()),
        SortKey::Score(i) => a.scores.get(i).partial_cmp(&b.scores.get(i)).unwrap_or(std::cmp::Ordering::Equal),
    };
    let ord = if descending { ord.reverse() } else { ord };
    ord.then(a.index.cmp(&b.index))
}

/// Count of rows per label, in label order.
pub fn distribution(rows: &[BatchRow], labels: &[String]) -> Vec<usize> {
    labels.iter().map(|l| rows.iter().filter(|r| &r.label == l).count()).collect()
}

/// One day's counts per label (label order).
#[derive(Debug, Clone, PartialEq)]
pub struct DayShare {
    pub day: String,
    pub counts: Vec<usize>,
}

impl DayShare {
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn share(&self, label: usize) -> f64 {
        let t = self.total();
        if t == 0 {
            0.0
        } else {
            self.counts[label] as f64 / t as f64
        }
    }
}

/// Per-day label counts over rows with a parsable day, oldest day first.
pub fn daily_shares(rows: &[BatchRow], labels: &[String]) -> Vec<DayShare> {
    let mut days: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for r in rows {
        let (Some(day), Some(li)) = (r.day.as_deref(), labels.iter().position(|l| l == &r.label)) else { continue };
        days.entry(day).or_insert_with(|| vec![0; labels.len()])[li] += 1;
    }
    days.into_iter().map(|(day, counts)| DayShare { day: day.to_string(), counts }).collect()
}

/// The results as CSV: `index,text,date,label,reviewed_label,<score per label>` (RFC 4180
/// quoting); `reviewed` maps a row's index to the label its reviewer gave.
pub fn to_csv(rows: &[BatchRow], labels: &[String], reviewed: &BTreeMap<usize, String>) -> String {
    let mut out = String::from("index,text,date,label,reviewed_label");
    for l in labels {
        out.push_str(&format!(",score_{}", csv_field(l)));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}",
            r.index,
            csv_field(&r.text),
            csv_field(r.date.as_deref().unwrap_or("")),
            csv_field(&r.label),
            csv_field(reviewed.get(&r.index).map(String::as_str).unwrap_or("")),
        ));
        for s in &r.scores {
            out.push_str(&format!(",{s:.6}"));
        }
        out.push('\n');
    }
    out
}

/// One exported row of the JSONL export.
#[derive(Serialize)]
struct JsonRow<'a> {
    index: usize,
    text: &'a str,
    date: Option<&'a str>,
    label: &'a str,
    scores: BTreeMap<&'a str, f64>,
    reviewed_label: Option<&'a str>,
}

/// The results as JSON Lines, one object per row with every score at full precision.
pub fn to_jsonl(rows: &[BatchRow], labels: &[String], reviewed: &BTreeMap<usize, String>) -> String {
    let mut out = String::new();
    for r in rows {
        let row = JsonRow {
            index: r.index,
            text: &r.text,
            date: r.date.as_deref(),
            label: &r.label,
            scores: labels.iter().map(String::as_str).zip(r.scores.iter().cloned()).collect(),
            reviewed_label: reviewed.get(&r.index).map(String::as_str),
        };
        out.push_str(&serde_json::to_string(&row).expect("rows serialize"));
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would make a spreadsheet evaluate the cell: a post is not a formula.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        shared::SENTIMENT_LABELS.iter().map(|s| s.to_string()).collect()
    }

    fn row(i: usize, text: &str, date: Option<&str>, label: &str, scores: [f64; 3]) -> BatchRow {
        BatchRow::new(
            i,
            Entry { text: text.into(), date: date.map(String::from) },
            Prediction { label: label.into(), scores: scores.to_vec() },
        )
    }

    #[test]
    fn days_parse_from_several_date_shapes() {
        assert_eq!(day_of("2024-03-01").as_deref(), Some("2024-03-01"));
        assert_eq!(day_of("2024-03-01T00:30:00+01:00").as_deref(), Some("2024-02-29"));
        assert_eq!(day_of("2024-03-01 10:00").as_deref(), Some("2024-03-01"));
        assert_eq!(day_of("yesterday"), None);
        assert_eq!(day_of("2024-02-30"), None);
    }

    #[test]
    fn distribution_daily_shares_and_sorting() {
        let mut rows = vec![
            row(1, "b", Some("2024-01-02"), "positive", [0.1, 0.2, 0.7]),
            row(2, "a", Some("2024-01-01"), "negative", [0.8, 0.1, 0.1]),
            row(3, "c", Some("2024-01-02"), "negative", [0.6, 0.3, 0.1]),
            row(4, "d", None, "neutral", [0.2, 0.6, 0.2]),
        ];
        assert_eq!(distribution(&rows, &labels()), [2, 1, 1]);
        let days = daily_shares(&rows, &labels());
        assert_eq!(days.len(), 2);
        assert_eq!(days[0], DayShare { day: "2024-01-01".into(), counts: vec![1, 0, 0] });
        assert_eq!(days[1].share(0), 0.5);
        assert_eq!(days[1].share(2), 0.5);
        sort_rows(&mut rows, SortKey::Score(0), true);
        assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), [2, 3, 4, 1]);
        sort_rows(&mut rows, SortKey::Date, false);
        assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), [2, 1, 3, 4]);
        sort_rows(&mut rows, SortKey::Text, false);
        assert_eq!(rows[0].text, "a");
        sort_rows(&mut rows, SortKey::Index, false);
        assert_eq!(rows[0].index, 1);
    }

    #[test]
    fn csv_export_quotes_and_defuses_formulas() {
        let rows = vec![
            row(1, "say \"hi\", ok", None, "neutral", [0.25, 0.5, 0.25]),
            row(2, "=1+1", Some("2024-01-01"), "neutral", [0.0, 1.0, 0.0]),
        ];
        let reviewed = BTreeMap::from([(2, "positive".to_string())]);
        let csv = to_csv(&rows, &labels(), &reviewed);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "index,text,date,label,reviewed_label,score_negative,score_neutral,score_positive");
        assert_eq!(lines[1], "1,\"say \"\"hi\"\", ok\",,neutral,,0.250000,0.500000,0.250000");
        assert_eq!(lines[2], "2,'=1+1,2024-01-01,neutral,positive,0.000000,1.000000,0.000000");
    }

    #[test]
    fn jsonl_export_has_every_row_at_full_precision() {
        let rows = vec![
            row(1, "line\nbreak \"q\"", None, "neutral", [0.125, 0.5, 0.375]),
            row(2, "=1+1", Some("2024-01-01"), "negative", [0.7, 0.2, 0.1]),
        ];
        let reviewed = BTreeMap::from([(1, "positive".to_string())]);
        let out = to_jsonl(&rows, &labels(), &reviewed);
        let back: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0]["text"], "line\nbreak \"q\"");
        assert_eq!(back[0]["scores"]["positive"], 0.375);
        assert_eq!(back[0]["reviewed_label"], "positive");
        assert_eq!(back[1]["text"], "=1+1", "JSON needs no formula defusing: the text is kept as it was");
        assert_eq!(back[1]["date"], "2024-01-01");
        assert!(back[1]["reviewed_label"].is_null());
    }

    #[test]
    fn confidence_sorts_least_sure_first() {
        let mut rows = vec![
            row(1, "a", None, "positive", [0.1, 0.1, 0.8]),
            row(2, "b", None, "neutral", [0.3, 0.4, 0.3]),
            row(3, "c", None, "negative", [0.6, 0.3, 0.1]),
        ];
        sort_rows(&mut rows, SortKey::Confidence, false);
        assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), [2, 3, 1]);
        assert_eq!(rows[0].confidence(), 0.4);
    }
}
