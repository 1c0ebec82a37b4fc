//! Feedback records the loop does not trust, left out before the monitor and training see them.
//!
//! Anyone can POST feedback, so a record's claims are checked where they can be: its
//! `model_version` must be a version the registry published (a record for a model that never
//! existed cannot have been made by our page), and its `predicted` label must be the argmax of
//! its own `scores` (the page sends both from one prediction). Records failing either are
//! excluded and counted in the report.

use serde::Serialize;
use shared::FeedbackRecord;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Screening {
    /// Records read.
    pub records: usize,
    /// Left out: `model_version` is not in the registry.
    pub unknown_model_version: usize,
    /// Left out: `predicted` is not the label with the highest score.
    pub predicted_not_argmax: usize,
    /// Records kept.
    pub kept: usize,
}

/// True when `predicted` has the highest score (ties count for every label that shares it).
pub fn predicted_is_argmax(r: &FeedbackRecord) -> bool {
    let s = &r.submission;
    let Some(&p) = s.scores.get(&s.predicted) else { return false };
    s.scores.values().all(|&v| v <= p)
}

/// Keeps the records whose claims hold; `versions` are the registry's published versions.
pub fn screen(records: Vec<FeedbackRecord>, versions: &BTreeSet<&str>) -> (Vec<FeedbackRecord>, Screening) {
    let mut s = Screening { records: records.len(), ..Default::default() };
    let kept: Vec<FeedbackRecord> = records
        .into_iter()
        .filter(|r| {
            if !versions.contains(r.submission.model_version.as_str()) {
                s.unknown_model_version += 1;
                false
            } else if !predicted_is_argmax(r) {
                s.predicted_not_argmax += 1;
                false
            } else {
                true
            }
        })
        .collect();
    s.kept = kept.len();
    (kept, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: &str, predicted: &str, scores: [f64; 3]) -> FeedbackRecord {
        serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-4000-8000-000000000001", "text": "t", "predicted": predicted,
            "scores": {"negative": scores[0], "neutral": scores[1], "positive": scores[2]},
            "label": "neutral", "model_version": version, "received_at": "2026-11-28T00:00:00.000Z"
        }))
        .unwrap()
    }

    #[test]
    fn unknown_versions_and_predictions_that_contradict_their_scores_are_left_out() {
        let versions: BTreeSet<&str> = ["v1", "v2"].into();
        let records = vec![
            rec("v1", "positive", [0.1, 0.2, 0.7]),
            rec("v2", "neutral", [0.4, 0.4, 0.2]), // a tie at the top: either label is honest
            rec("v9", "positive", [0.1, 0.2, 0.7]),
            rec("v1", "negative", [0.1, 0.2, 0.7]),
        ];
        let (kept, s) = screen(records, &versions);
        assert_eq!(kept.len(), 2);
        assert_eq!(s, Screening { records: 4, unknown_model_version: 1, predicted_not_argmax: 1, kept: 2 });
    }
}
