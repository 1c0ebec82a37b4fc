//! The promotion guard: a promoted champion is watched on the feedback that arrives after its
//! promotion, against the parent it replaced.
//!
//! The users only ever saw the champion's predictions, so its agreement is read from the
//! records (`label == predicted`); the parent's is measured by running the parent on the same
//! posts. When the Wilson 95 % upper bound of the champion's agreement is below the parent's
//! lower bound, with at least `min_samples` records, the champion is worse where the users are,
//! beyond what chance explains, and the parent is restored. Both figures use the same posts, so
//! a harder mix of posts lowers both alike.

use super::config::PromotionGuardConfig;
use shared::feedback::parse_timestamp_millis;
pub use shared::model_store::{GuardAgreement, GuardCheck, GuardDecision};
use shared::FeedbackRecord;

/// The champion's records received at or after `since` (RFC 3339).
pub fn since_promotion<'a>(records: &'a [FeedbackRecord], champion: &str, since: &str) -> Vec<&'a FeedbackRecord> {
    let since = parse_timestamp_millis(since).unwrap_or(i64::MIN);
    records
        .iter()
        .filter(|r| r.submission.model_version == champion)
        .filter(|r| parse_timestamp_millis(&r.received_at).is_some_and(|t| t >= since))
        .collect()
}

/// Judges the champion against its parent on `records` (the champion's, since its promotion);
/// `parent_labels` runs the parent on their texts, and is only called with enough records.
pub fn check<E>(
    champion: &str,
    parent: &str,
    since: &str,
    records: &[&FeedbackRecord],
    cfg: &PromotionGuardConfig,
    parent_labels: impl FnOnce(&[&str]) -> Result<Vec<String>, E>,
) -> Result<GuardCheck, E> {
    let n = records.len() as u64;
    let mut check = GuardCheck {
        champion: champion.to_string(),
        parent: parent.to_string(),
        since: since.to_string(),
        min_samples: cfg.min_samples,
        champion_agreement: None,
        parent_agreement: None,
        decision: GuardDecision::TooFew,
        reason: format!(
            "{n} feedback records for {champion} since its promotion; the guard compares it with {parent} from {}",
            cfg.min_samples
        ),
    };
    if n == 0 || n < cfg.min_samples {
        return Ok(check);
    }
    let texts: Vec<&str> = records.iter().map(|r| r.submission.text.as_str()).collect();
    let by_parent = parent_labels(&texts)?;
    let agrees = |i: usize, predicted: &str| records[i].submission.label == predicted;
    let champion_ok = (0..records.len()).filter(|&i| agrees(i, &records[i].submission.predicted)).count() as u64;
    let parent_ok = by_parent.iter().enumerate().filter(|(i, p)| agrees(*i, p)).count() as u64;
    let (c, p) =
        (GuardAgreement::new(champion_ok, n).expect("n > 0"), GuardAgreement::new(parent_ok, n).expect("n > 0"));
    check.champion_agreement = Some(c);
    check.parent_agreement = Some(p);
    let pct = |x: f64| 100.0 * x;
    let figures = format!(
        "on {n} feedback records since its promotion, users agree with {champion} on {:.1} % (95 % CI {:.1}–{:.1} %) and would have with {parent} on {:.1} % ({:.1}–{:.1} %)",
        pct(c.agreement),
        pct(c.ci_low),
        pct(c.ci_high),
        pct(p.agreement),
        pct(p.ci_low),
        pct(p.ci_high)
    );
    if c.ci_high < p.ci_low {
        check.decision = GuardDecision::Rollback;
        check.reason = format!("rolled back to {parent}: {figures}");
    } else {
        check.decision = GuardDecision::Keep;
        check.reason = format!("kept {champion}: {figures}");
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize, label: &str, predicted: &str, version: &str, at: &str) -> FeedbackRecord {
        serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"), "text": format!("post {i}"), "predicted": predicted,
            "scores": {"negative": 0.2, "neutral": 0.3, "positive": 0.5}, "label": label,
            "model_version": version, "received_at": at
        }))
        .unwrap()
    }

    #[test]
    fn only_the_champions_records_since_its_promotion_count() {
        let records = vec![
            rec(1, "positive", "positive", "v2", "2026-11-28T10:00:00.000Z"),
            rec(2, "positive", "positive", "v2", "2026-11-27T10:00:00.000Z"),
            rec(3, "positive", "positive", "v1", "2026-11-28T10:00:00.000Z"),
        ];
        let got = since_promotion(&records, "v2", "2026-11-28T00:00:00.000Z");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].submission.text, "post 1");
    }

    #[test]
    fn rolls_back_only_when_the_intervals_separate_with_enough_records() {
        let cfg = PromotionGuardConfig { min_samples: 200 };
        let at = "2026-11-28T10:00:00.000Z";
        // The champion is right on 60 % of 300 posts, the parent on 75 %: 54.4–65.3 % vs 69.8–79.6 %.
        let records: Vec<FeedbackRecord> =
            (0..300).map(|i| rec(i, "positive", if i % 5 < 3 { "positive" } else { "negative" }, "v2", at)).collect();
        let refs: Vec<&FeedbackRecord> = records.iter().collect();
        let parent = |texts: &[&str]| -> Result<Vec<String>, ()> {
            Ok((0..texts.len()).map(|i| if i % 4 < 3 { "positive" } else { "neutral" }.to_string()).collect())
        };
        let c = check("v2", "v1", at, &refs, &cfg, parent).unwrap();
        assert_eq!(c.decision, GuardDecision::Rollback, "{}", c.reason);
        assert!(c.reason.starts_with("rolled back to v1: on 300 feedback records"), "{}", c.reason);
        assert!((c.parent_agreement.unwrap().agreement - 0.75).abs() < 1e-12);

        // 60 % against 64 %: the intervals overlap, the champion stays.
        let close = |texts: &[&str]| -> Result<Vec<String>, ()> {
            Ok((0..texts.len()).map(|i| if i % 25 < 16 { "positive" } else { "neutral" }.to_string()).collect())
        };
        assert_eq!(check("v2", "v1", at, &refs, &cfg, close).unwrap().decision, GuardDecision::Keep);

        // Too few records: no verdict, and the parent is not even run.
        let c =
            check("v2", "v1", at, &refs[..150], &cfg, |_| -> Result<Vec<String>, ()> { panic!("not run") }).unwrap();
        assert_eq!(c.decision, GuardDecision::TooFew);
    }
}
