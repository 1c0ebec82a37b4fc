//! The review queue over a batch's results: which rows to show in which order, what a key
//! does, how far the review has got, and what of it survives a reload.
//!
//! A row is reviewed by giving it a label (the predicted one: "right"; another: a correction).
//! Each review is one feedback record sent through the outbox like the single-post form's, with
//! its own id; reviewing a row again sends a new record (the user changed their mind), never the
//! same id with another body. The results and the reviews are kept in local storage under two
//! keys (the rows once, the small review map after every review), tied by the batch's id.

use crate::batch::results::{compare, BatchRow, SortKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Local-storage keys (bump the suffix if the stored shape changes).
pub const RESULTS_KEY: &str = "sentiment-monitor.batch-results.v1";
pub const REVIEWS_KEY: &str = "sentiment-monitor.batch-reviews.v1";

/// A batch's results as they are kept across reloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedResults {
    /// Ties the reviews to these results.
    pub batch_id: String,
    /// The model version that made the predictions (the reviews' records carry it).
    pub model_version: String,
    pub labels: Vec<String>,
    pub rows: Vec<BatchRow>,
    pub elapsed_ms: f64,
}

/// One row's review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub label: String,
    /// The feedback record that carries it (its delivery state is in the outbox).
    pub feedback_id: String,
}

/// The reviews of one batch, by row index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reviews {
    pub batch_id: String,
    pub by_row: BTreeMap<usize, Review>,
}

impl Reviews {
    pub fn new(batch_id: &str) -> Self {
        Reviews { batch_id: batch_id.to_string(), by_row: BTreeMap::new() }
    }

    /// The stored reviews if they belong to `batch_id`, else none.
    pub fn restore(json: Option<&str>, batch_id: &str) -> Self {
        json.and_then(|j| serde_json::from_str::<Reviews>(j).ok())
            .filter(|r| r.batch_id == batch_id)
            .unwrap_or_else(|| Reviews::new(batch_id))
    }

    /// The label each reviewed row was given.
    pub fn labels(&self) -> BTreeMap<usize, String> {
        self.by_row.iter().map(|(&i, r)| (i, r.label.clone())).collect()
    }
}

/// Which rows the queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shown {
    #[default]
    All,
    Unreviewed,
    Reviewed,
}

/// The queue's filters and order.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueView {
    /// Only rows predicted with this label.
    pub label: Option<String>,
    /// Only rows whose confidence is below this.
    pub below: Option<f64>,
    pub shown: Shown,
    pub sort: SortKey,
    pub descending: bool,
}

impl Default for QueueView {
    /// Least confident first: the rows most worth a look.
    fn default() -> Self {
        QueueView { label: None, below: None, shown: Shown::All, sort: SortKey::Confidence, descending: false }
    }
}

/// The indices of the rows the queue shows, in its order.
pub fn queue(rows: &[BatchRow], reviews: &Reviews, view: &QueueView) -> Vec<usize> {
    let mut out: Vec<&BatchRow> = rows
        .iter()
        .filter(|r| view.label.as_ref().is_none_or(|l| &r.label == l))
        .filter(|r| view.below.is_none_or(|b| r.confidence() < b))
        .filter(|r| match view.shown {
            Shown::All => true,
            Shown::Unreviewed => !reviews.by_row.contains_key(&r.index),
            Shown::Reviewed => reviews.by_row.contains_key(&r.index),
        })
        .collect();
    out.sort_by(|a, b| compare(a, b, view.sort, view.descending));
    out.into_iter().map(|r| r.index).collect()
}

/// What a key pressed on the queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// The label at this position (keys 1, 2, 3… in label order).
    Label(usize),
    /// The prediction is right.
    Right,
    Next,
    Previous,
    First,
    Last,
    Explain,
}

pub fn key_action(key: &str, labels: usize) -> Option<KeyAction> {
    match key {
        "ArrowDown" | "j" => Some(KeyAction::Next),
        "ArrowUp" | "k" => Some(KeyAction::Previous),
        "Home" => Some(KeyAction::First),
        "End" => Some(KeyAction::Last),
        "Enter" | "y" => Some(KeyAction::Right),
        "e" => Some(KeyAction::Explain),
        k => k.parse::<usize>().ok().filter(|&n| n >= 1 && n <= labels.min(9)).map(|n| KeyAction::Label(n - 1)),
    }
}

/// Where the cursor goes after reviewing the row at `at` of `order` (row indices in the
/// queue's order): the next unreviewed row after it, else the next row, else where it is.
pub fn after_review(order: &[usize], at: usize, reviews: &Reviews) -> usize {
    order
        .iter()
        .enumerate()
        .skip(at + 1)
        .find(|(_, i)| !reviews.by_row.contains_key(i))
        .map(|(n, _)| n)
        .unwrap_or_else(|| (at + 1).min(order.len().saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::input::Entry;
    use crate::protocol::Prediction;

    fn row(i: usize, label: &str, scores: [f64; 3]) -> BatchRow {
        BatchRow::new(
            i,
            Entry { text: format!("t{i}"), date: None },
            Prediction { label: label.into(), scores: scores.to_vec() },
        )
    }

    fn rows() -> Vec<BatchRow> {
        vec![
            row(1, "positive", [0.05, 0.05, 0.9]),
            row(2, "neutral", [0.3, 0.4, 0.3]),
            row(3, "negative", [0.55, 0.3, 0.15]),
            row(4, "positive", [0.2, 0.2, 0.6]),
        ]
    }

    fn indices(order: &[usize]) -> Vec<usize> {
        order.to_vec()
    }

    #[test]
    fn the_queue_offers_the_least_confident_rows_first_and_filters() {
        let mut reviews = Reviews::new("b1");
        let view = QueueView::default();
        assert_eq!(indices(&queue(&rows(), &reviews, &view)), [2, 3, 4, 1]);
        let positive = QueueView { label: Some("positive".into()), ..QueueView::default() };
        assert_eq!(indices(&queue(&rows(), &reviews, &positive)), [4, 1]);
        let unsure = QueueView { below: Some(0.6), ..QueueView::default() };
        assert_eq!(indices(&queue(&rows(), &reviews, &unsure)), [2, 3]);
        reviews.by_row.insert(3, Review { label: "neutral".into(), feedback_id: "x".into() });
        let open = QueueView { shown: Shown::Unreviewed, ..QueueView::default() };
        assert_eq!(indices(&queue(&rows(), &reviews, &open)), [2, 4, 1]);
        let done = QueueView { shown: Shown::Reviewed, ..QueueView::default() };
        assert_eq!(indices(&queue(&rows(), &reviews, &done)), [3]);
        let surest = QueueView { descending: true, ..QueueView::default() };
        assert_eq!(indices(&queue(&rows(), &reviews, &surest)), [1, 4, 3, 2]);
    }

    #[test]
    fn keys_map_to_labels_moves_and_right() {
        assert_eq!(key_action("1", 3), Some(KeyAction::Label(0)));
        assert_eq!(key_action("3", 3), Some(KeyAction::Label(2)));
        assert_eq!(key_action("4", 3), None);
        assert_eq!(key_action("0", 3), None);
        assert_eq!(key_action("Enter", 3), Some(KeyAction::Right));
        assert_eq!(key_action("ArrowDown", 3), Some(KeyAction::Next));
        assert_eq!(key_action("ArrowUp", 3), Some(KeyAction::Previous));
        assert_eq!(key_action("x", 3), None);
    }

    #[test]
    fn after_a_review_the_cursor_moves_to_the_next_open_row() {
        let mut reviews = Reviews::new("b");
        let order = [2, 3, 4, 1];
        reviews.by_row.insert(2, Review { label: "neutral".into(), feedback_id: "a".into() });
        reviews.by_row.insert(3, Review { label: "neutral".into(), feedback_id: "b".into() });
        assert_eq!(after_review(&order, 0, &reviews), 2);
        reviews.by_row.insert(4, Review { label: "neutral".into(), feedback_id: "c".into() });
        reviews.by_row.insert(1, Review { label: "neutral".into(), feedback_id: "d".into() });
        assert_eq!(after_review(&order, 1, &reviews), 2, "all reviewed: one down");
        assert_eq!(after_review(&order, 3, &reviews), 3, "the last row stays");
    }

    #[test]
    fn reviews_survive_a_reload_only_with_their_batch() {
        let mut r = Reviews::new("b1");
        r.by_row.insert(7, Review { label: "negative".into(), feedback_id: "id".into() });
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(Reviews::restore(Some(&json), "b1"), r);
        assert_eq!(Reviews::restore(Some(&json), "b2"), Reviews::new("b2"));
        assert_eq!(Reviews::restore(Some("junk"), "b1"), Reviews::new("b1"));
        assert_eq!(r.labels().get(&7).map(String::as_str), Some("negative"));
    }
}
