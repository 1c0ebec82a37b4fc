//! The feedback outbox: every submission is stored (in local storage, by the page) before it is
//! sent, and stays until the server has it. A network failure or a server error leaves it
//! waiting, to be retried with the same id — the server treats the id as an idempotency key,
//! so a retry after a lost response cannot create a second record.

use crate::protocol::Prediction;
use serde::{Deserialize, Serialize};
use shared::FeedbackSubmission;
use std::collections::BTreeMap;

/// The local-storage key of the outbox (bump the suffix if the stored shape changes).
pub const STORAGE_KEY: &str = "sentiment-monitor.feedback-outbox.v1";

/// A UUID v4 in canonical form from 16 random bytes. Written here, not with `uuid` and `hex` as
/// the rest of the code base does (shared::is_uuid, the worker's digests): with them the page's
/// wasm was 733 B gzip larger (+0.15 %; uuid's `encode_lower`, the batch id by `hex::encode`;
/// docs/benchmarks.md, "Commodity crates"), and the page must not grow.
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The record for "`label` is right for `text`", given the prediction the user saw (from the
/// single-post form and the review queue alike). The id is set by the outbox's owner when it
/// queues the record.
pub fn submission(
    text: &str,
    prediction: &Prediction,
    labels: &[String],
    model_version: &str,
    label: &str,
    note: Option<String>,
) -> FeedbackSubmission {
    FeedbackSubmission {
        id: String::new(),
        text: text.to_string(),
        predicted: prediction.label.clone(),
        scores: labels.iter().cloned().zip(prediction.scores.iter().cloned()).collect::<BTreeMap<_, _>>(),
        label: label.to_string(),
        model_version: model_version.to_string(),
        note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// Not yet acknowledged; (re)sent on the next attempt.
    Waiting {
        attempts: u32,
        last_error: Option<String>,
    },
    Sent,
    /// Refused by the server for good (e.g. invalid); retrying cannot help.
    Failed {
        reason: String,
    },
}

impl Delivery {
    /// The word the page shows (`data-testid="feedback-state"`).
    pub fn word(&self) -> &'static str {
        match self {
            Delivery::Waiting { .. } => "waiting",
            Delivery::Sent => "sent",
            Delivery::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub submission: FeedbackSubmission,
    pub delivery: Delivery,
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: stored now (201) or already stored under this id (200).
    Accepted,
    /// No answer (offline, DNS, CORS, server down).
    Unreachable(String),
    /// An HTTP status with the server's error text, if any.
    Status(u16, String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    pub items: Vec<Item>,
}

/// Sent items kept for display; older ones are dropped so local storage stays small.
const KEEP_SENT: usize = 20;

impl Outbox {
    pub fn from_json(s: Option<&str>) -> Self {
        // A corrupt or older outbox must not break the page; it is simply started afresh.
        s.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("outbox serializes")
    }

    pub fn push(&mut self, submission: FeedbackSubmission) {
        self.items.push(Item { submission, delivery: Delivery::Waiting { attempts: 0, last_error: None } });
    }

    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.submission.id == id)
    }

    /// Submissions to (re)send now.
    pub fn due(&self) -> Vec<FeedbackSubmission> {
        self.items
            .iter()
            .filter(|i| matches!(i.delivery, Delivery::Waiting { .. }))
            .map(|i| i.submission.clone())
            .collect()
    }

    pub fn waiting(&self) -> usize {
        self.items.iter().filter(|i| matches!(i.delivery, Delivery::Waiting { .. })).count()
    }

    /// Records the outcome of sending `id`.
    pub fn record(&mut self, id: &str, outcome: Outcome) {
        let Some(item) = self.items.iter_mut().find(|i| i.submission.id == id) else { return };
        let attempts = match &item.delivery {
            Delivery::Waiting { attempts, .. } => attempts + 1,
            _ => 1,
        };
        item.delivery = match outcome {
            Outcome::Accepted => Delivery::Sent,
            Outcome::Unreachable(e) => Delivery::Waiting { attempts, last_error: Some(e) },
            // Overload, rate limiting and server faults pass; the same request can succeed later.
            Outcome::Status(s, e) if s == 408 || s == 429 || s >= 500 => {
                Delivery::Waiting { attempts, last_error: Some(format!("HTTP {s}: {e}")) }
            }
            Outcome::Status(s, e) => Delivery::Failed { reason: format!("HTTP {s}: {e}") },
        };
        self.prune();
    }

    fn prune(&mut self) {
        let sent = self.items.iter().filter(|i| i.delivery == Delivery::Sent).count();
        let mut drop = sent.saturating_sub(KEEP_SENT);
        self.items.retain(|i| {
            if drop > 0 && i.delivery == Delivery::Sent {
                drop -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// The error text in a server error body (`{"error": "..."}`), or the body itself.
pub fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str) -> FeedbackSubmission {
        FeedbackSubmission {
            id: id.into(),
            text: "t".into(),
            predicted: "neutral".into(),
            scores: [("negative", 0.2), ("neutral", 0.5), ("positive", 0.3)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            label: "negative".into(),
            model_version: "v1".into(),
            note: None,
        }
    }

    #[test]
    fn uuid_v4_has_version_and_variant_bits() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert!(shared::feedback::is_uuid(&id));
        assert_eq!(&uuid_v4([0; 16])[14..15], "4");
        assert_eq!(&uuid_v4([0; 16])[19..20], "8");
    }

    #[test]
    fn unreachable_waits_and_retries_with_the_same_id() {
        let mut o = Outbox::default();
        o.push(sub("a"));
        o.record("a", Outcome::Unreachable("offline".into()));
        assert_eq!(o.get("a").unwrap().delivery.word(), "waiting");
        assert_eq!(o.due()[0].id, "a");
        // Survives a page reload through local storage.
        let mut o = Outbox::from_json(Some(&o.to_json()));
        o.record("a", Outcome::Status(503, "busy".into()));
        assert!(matches!(o.get("a").unwrap().delivery, Delivery::Waiting { attempts: 2, .. }));
        o.record("a", Outcome::Accepted);
        assert_eq!(o.get("a").unwrap().delivery, Delivery::Sent);
        assert!(o.due().is_empty());
    }

    #[test]
    fn client_errors_fail_for_good() {
        let mut o = Outbox::default();
        o.push(sub("b"));
        o.record("b", Outcome::Status(422, error_text(r#"{"error":"label is bad","field":"label"}"#)));
        assert_eq!(o.get("b").unwrap().delivery, Delivery::Failed { reason: "HTTP 422: label is bad".into() });
        assert!(o.due().is_empty());
        assert_eq!(Outbox::from_json(Some("not json")), Outbox::default());
    }

    #[test]
    fn old_sent_items_are_pruned() {
        let mut o = Outbox::default();
        for i in 0..30 {
            let id = format!("id{i}");
            o.push(sub(&id));
            o.record(&id, Outcome::Accepted);
        }
        o.push(sub("w"));
        assert_eq!(o.items.len(), KEEP_SENT + 1);
        assert_eq!(o.waiting(), 1);
    }
}
