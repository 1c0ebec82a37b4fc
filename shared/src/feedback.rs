//! The feedback record: what the browser sends, what the server stores, what lands in the
//! Hub logs dataset and what the trainer reads. One type, one serialization.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest accepted text, in characters after trimming.
pub const MAX_TEXT_CHARS: usize = 5_000;
/// Longest accepted note, in characters.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Longest accepted model version string.
pub const MAX_MODEL_VERSION_CHARS: usize = 128;

/// A user's correction (or confirmation) of one prediction, as the client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackSubmission {
    /// Made by the client (a UUID); the idempotency key.
    pub id: String,
    pub text: String,
    /// The label the model predicted.
    pub predicted: String,
    /// The model's score for every label.
    pub scores: BTreeMap<String, f64>,
    /// The label the user says is right.
    pub label: String,
    pub model_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A stored record: the submission plus the time the server received it (RFC 3339, UTC) and
/// who sent it, pseudonymously.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    #[serde(flatten)]
    pub submission: FeedbackSubmission,
    pub received_at: String,
    /// The sender's pseudonymous client key (16 hex digits: a keyed hash of what identifies the
    /// client, never the address), set by the server; the trainer counts votes per client with
    /// it. `None` in records stored before it existed, and in the server's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Why a submission was refused; `field()` names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedbackError {
    #[error("id must be a UUID (8-4-4-4-12 hex digits), got {0:?}")]
    BadId(String),
    #[error("text is empty after trimming")]
    EmptyText,
    #[error("text has {0} characters after trimming; at most {MAX_TEXT_CHARS} are accepted")]
    TextTooLong(usize),
    #[error("{field} {label:?} is not one of the model's labels ({allowed})")]
    UnknownLabel { field: &'static str, label: String, allowed: String },
    #[error("scores must have exactly one entry per label ({allowed})")]
    ScoresLabels { allowed: String },
    #[error("score for {label:?} must be a finite number in [0, 1], got {value}")]
    BadScore { label: String, value: f64 },
    #[error("model_version must be 1-{MAX_MODEL_VERSION_CHARS} letters, digits, '.', '_' or '-' (a registry version)")]
    BadModelVersion,
    #[error("note has more than {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
}

impl FeedbackError {
    /// The JSON field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            FeedbackError::BadId(_) => "id",
            FeedbackError::EmptyText | FeedbackError::TextTooLong(_) => "text",
            FeedbackError::UnknownLabel { field, .. } => field,
            FeedbackError::ScoresLabels { .. } | FeedbackError::BadScore { .. } => "scores",
            FeedbackError::BadModelVersion => "model_version",
            FeedbackError::NoteTooLong => "note",
        }
    }
}

impl FeedbackSubmission {
    /// Checks every rule against the model's label set. Text length counts characters of the
    /// trimmed text; the text itself is stored as sent.
    pub fn validate(&self, labels: &[impl AsRef<str>]) -> Result<(), FeedbackError> {
        if !is_uuid(&self.id) {
            return Err(FeedbackError::BadId(self.id.chars().take(64).collect()));
        }
        let chars = self.text.trim().chars().count();
        if chars == 0 {
            return Err(FeedbackError::EmptyText);
        }
        if chars > MAX_TEXT_CHARS {
            return Err(FeedbackError::TextTooLong(chars));
        }
        let allowed = || labels.iter().map(|l| l.as_ref()).collect::<Vec<_>>().join(", ");
        let known = |l: &str| labels.iter().any(|x| x.as_ref() == l);
        for (field, label) in [("predicted", &self.predicted), ("label", &self.label)] {
            if !known(label) {
                return Err(FeedbackError::UnknownLabel {
                    field,
                    label: label.chars().take(64).collect(),
                    allowed: allowed(),
                });
            }
        }
        if self.scores.len() != labels.len() || !self.scores.keys().all(|k| known(k)) {
            return Err(FeedbackError::ScoresLabels { allowed: allowed() });
        }
        for (label, &value) in &self.scores {
            if !value.is_finite() || !(0.0..=1.0).contains(&value) {
                return Err(FeedbackError::BadScore { label: label.clone(), value });
            }
        }
        if !is_model_version(&self.model_version) {
            return Err(FeedbackError::BadModelVersion);
        }
        if self.note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
            return Err(FeedbackError::NoteTooLong);
        }
        Ok(())
    }
}

/// True for a well-formed model version: 1-128 ASCII letters, digits, '.', '_' or '-' (the
/// registry's rule for version names). Keeps labels of metrics and stats keys printable and
/// bounded in length.
pub fn is_model_version(s: &str) -> bool {
    (1..=MAX_MODEL_VERSION_CHARS).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True for the canonical textual UUID form (any version), either case: the hyphenated form
/// only (36 characters), not the braced, URN or plain-hex forms `uuid` also parses.
pub fn is_uuid(s: &str) -> bool {
    s.len() == uuid::fmt::Hyphenated::LENGTH && uuid::Uuid::try_parse(s).is_ok()
}

/// Counts by label and agreement, as returned by `GET /api/feedback/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackStats {
    pub total: u64,
    pub by_label: BTreeMap<String, u64>,
    /// Day (YYYY-MM-DD, UTC) → label → count.
    pub by_day: BTreeMap<String, BTreeMap<String, u64>>,
    pub by_model_version: BTreeMap<String, u64>,
    /// Share of records where the prediction equals the user's label; `None` without records.
    pub agreement: Option<f64>,
    /// Wilson 95 % interval of `agreement`.
    pub agreement_ci95: Option<[f64; 2]>,
}

/// Wilson score interval for `successes` out of `n` at confidence `z` (1.96 for 95 %).
pub fn wilson_interval(successes: u64, n: u64, z: f64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / denom;
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// Population stability index of a label mix `p` against a reference mix `q` (shares by
/// label): Σ (p − q) ln(p / q), both shares floored at 1e-4 so an empty class stays finite. The
/// trainer's monitor and the page's monitor view both read drift through this one formula.
pub fn psi(p: &BTreeMap<String, f64>, q: &BTreeMap<String, f64>) -> f64 {
    let labels: std::collections::BTreeSet<&String> = p.keys().chain(q.keys()).collect();
    labels
        .into_iter()
        .map(|l| {
            let a = p.get(l).copied().unwrap_or(0.0).max(1e-4);
            let b = q.get(l).copied().unwrap_or(0.0).max(1e-4);
            (a - b) * (a / b).ln()
        })
        .sum()
}

// RFC 3339 and the calendar maths are written here, not taken from a crate, for the page's
// sake: the page parses its batches' date cells with them, and the `time` crate (0.3.55,
// `parsing`), which does both, costs 6.5 KB gzip of wasm more than these functions, measured
// alone at opt-level z after wasm-opt (15,234 B against 8,778 B), about 1.3 % of the page.
// `humantime`, which the native programs already link, takes no UTC offsets (`+01:00`) and no
// date before 1970. A test checks these against `humantime` wherever both apply.

/// Milliseconds since the Unix epoch → RFC 3339 UTC with millisecond precision
/// (`2026-11-23T10:00:00.000Z`). Every `received_at` the server writes has this form, so the
/// strings sort in time order.
pub fn format_timestamp_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses `YYYY-MM-DD` (midnight UTC) or RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`)
/// into milliseconds since the Unix epoch. `None` for anything else.
pub fn parse_timestamp_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, d) * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += (h * 3600 + mi * 60 + sec) * 1000;
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        ms += frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
    }
    match b.get(i..)? {
        [b'Z' | b'z'] => Some(ms),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let off = (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?) * 60_000;
            Some(if *sign == b'+' { ms - off } else { ms + off })
        }
        _ => None,
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Builds [`FeedbackStats`] from records one at a time, so a caller can keep only the few
/// fields it needs per record (the server keeps no texts in memory).
#[derive(Debug, Default, Clone)]
pub struct StatsAccumulator {
    total: u64,
    agree: u64,
    by_label: BTreeMap<String, u64>,
    by_day: BTreeMap<String, BTreeMap<String, u64>>,
    by_model_version: BTreeMap<String, u64>,
}

impl StatsAccumulator {
    /// Adds one record; `received_at_ms` is milliseconds since the Unix epoch (UTC day buckets).
    pub fn add(&mut self, label: &str, predicted: &str, model_version: &str, received_at_ms: i64) {
        self.total += 1;
        self.agree += u64::from(label == predicted);
        *self.by_label.entry(label.to_owned()).or_default() += 1;
        let day = format_timestamp_millis(received_at_ms)[..10].to_owned();
        *self.by_day.entry(day).or_default().entry(label.to_owned()).or_default() += 1;
        *self.by_model_version.entry(model_version.to_owned()).or_default() += 1;
    }

    pub fn finish(self) -> FeedbackStats {
        let agreement = (self.total > 0).then(|| self.agree as f64 / self.total as f64);
        FeedbackStats {
            total: self.total,
            by_label: self.by_label,
            by_day: self.by_day,
            by_model_version: self.by_model_version,
            agreement,
            agreement_ci95: wilson_interval(self.agree, self.total, Z_95),
        }
    }
}

/// The normal quantile for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FeedbackSubmission {
        FeedbackSubmission {
            id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            text: "great service".into(),
            predicted: "positive".into(),
            scores: [("negative", 0.1), ("neutral", 0.2), ("positive", 0.7)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            label: "neutral".into(),
            model_version: "v1".into(),
            note: None,
        }
    }

    #[test]
    fn validation_rules() {
        let labels = crate::SENTIMENT_LABELS;
        assert_eq!(sample().validate(&labels), Ok(()));
        let mut s = sample();
        s.id = "nope".into();
        assert_eq!(s.validate(&labels).unwrap_err().field(), "id");
        let mut s = sample();
        s.text = "  \n ".into();
        assert_eq!(s.validate(&labels), Err(FeedbackError::EmptyText));
        let mut s = sample();
        s.text = format!("  {}  ", "é".repeat(MAX_TEXT_CHARS));
        assert_eq!(s.validate(&labels), Ok(()));
        s.text = "é".repeat(MAX_TEXT_CHARS + 1);
        assert!(matches!(s.validate(&labels), Err(FeedbackError::TextTooLong(5001))));
        let mut s = sample();
        s.label = "angry".into();
        assert_eq!(s.validate(&labels).unwrap_err().field(), "label");
        let mut s = sample();
        s.scores.remove("neutral");
        assert_eq!(s.validate(&labels).unwrap_err().field(), "scores");
        let mut s = sample();
        s.scores.insert("neutral".into(), f64::NAN);
        assert_eq!(s.validate(&labels).unwrap_err().field(), "scores");
        let mut s = sample();
        s.scores.insert("neutral".into(), 1.5);
        assert_eq!(s.validate(&labels).unwrap_err().field(), "scores");
        for bad in ["", "v 1", "v1\n", "{{x}}", "v\"1", "é", &"v".repeat(MAX_MODEL_VERSION_CHARS + 1)] {
            let mut s = sample();
            s.model_version = bad.into();
            assert_eq!(s.validate(&labels), Err(FeedbackError::BadModelVersion), "{bad:?}");
        }
        let mut s = sample();
        s.model_version = "20261123-194025-711a5bd3.q8_0".into();
        assert_eq!(s.validate(&labels), Ok(()));
    }

    #[test]
    fn only_the_hyphenated_uuid_form_is_an_id() {
        assert!(is_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
        for bad in [
            "0f8fad5bd9cb469fa16570867728950e",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb-469f-a16570867728950e-",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_fields_are_refused_and_records_round_trip() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["extra"] = 1.into();
        assert!(serde_json::from_value::<FeedbackSubmission>(v).is_err());
        let rec = FeedbackRecord { submission: sample(), received_at: "2026-11-23T10:00:00Z".into(), client: None };
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains("\"received_at\""));
        assert_eq!(serde_json::from_str::<FeedbackRecord>(&line).unwrap(), rec);
        assert!(!line.contains("\"client\""), "omitted when unknown, so old readers see old lines");
        let keyed = FeedbackRecord { client: Some("0123456789abcdef".into()), ..rec };
        let line = serde_json::to_string(&keyed).unwrap();
        assert!(line.contains("\"client\":\"0123456789abcdef\""), "{line}");
        assert_eq!(serde_json::from_str::<FeedbackRecord>(&line).unwrap(), keyed);
    }

    #[test]
    fn psi_matches_a_worked_example() {
        let q = BTreeMap::from([("a".to_string(), 0.5), ("b".to_string(), 0.5)]);
        let small = BTreeMap::from([("a".to_string(), 0.55), ("b".to_string(), 0.45)]);
        let big = BTreeMap::from([("a".to_string(), 0.9), ("b".to_string(), 0.1)]);
        // 0.05 ln 1.1 + 0.05 ln(1/0.9) = 0.01003; 0.4 ln 1.8 + 0.4 ln 5 = 0.8789
        assert!((psi(&small, &q) - 0.01003).abs() < 1e-4);
        assert!((psi(&big, &q) - 0.8789).abs() < 1e-3);
        assert_eq!(psi(&q, &q), 0.0);
    }

    #[test]
    fn wilson_matches_a_worked_example() {
        // 81 of 263: Wilson 95 % is [0.2553, 0.3662] (Newcombe 1998 style check by hand).
        let [lo, hi] = wilson_interval(81, 263, 1.959_963_984_540_054).unwrap();
        assert!((lo - 0.2553).abs() < 5e-4 && (hi - 0.3662).abs() < 5e-4, "{lo} {hi}");
        assert_eq!(wilson_interval(0, 0, 1.96), None);
    }

    #[test]
    fn timestamps_round_trip_and_parse_offsets() {
        assert_eq!(format_timestamp_millis(0), "1970-01-01T00:00:00.000Z");
        let ms = parse_timestamp_millis("2024-02-29T23:59:59.123Z").unwrap();
        assert_eq!(format_timestamp_millis(ms), "2024-02-29T23:59:59.123Z");
        assert_eq!(parse_timestamp_millis("2024-03-01"), Some(ms + 877));
        assert_eq!(parse_timestamp_millis("2024-03-01T01:00:00+01:00"), parse_timestamp_millis("2024-03-01T00:00:00Z"));
        assert_eq!(parse_timestamp_millis("2024-03-01T00:00:00.5Z").unwrap() % 1000, 500);
        for bad in [
            "",
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "yesterday",
            "2024-1-01",
        ] {
            assert_eq!(parse_timestamp_millis(bad), None, "{bad}");
        }
        for ms in [-86_400_001_i64, 951_782_400_000, 4_102_444_800_000, 1_700_000_000_123] {
            assert_eq!(parse_timestamp_millis(&format_timestamp_millis(ms)), Some(ms));
        }
    }

    #[test]
    fn timestamps_agree_with_humantime() {
        use std::time::{Duration, UNIX_EPOCH};
        // Every 7,919,999,123 ms (~92 days and an odd time of day) from 1970 to past 2100.
        for ms in (0..4_200_000_000_000_i64).step_by(7_919_999_123) {
            let at = UNIX_EPOCH + Duration::from_millis(ms as u64);
            let theirs = humantime::format_rfc3339_millis(at).to_string();
            assert_eq!(format_timestamp_millis(ms), theirs);
            assert_eq!(parse_timestamp_millis(&theirs), Some(ms));
            let parsed = humantime::parse_rfc3339(&format_timestamp_millis(ms)).unwrap();
            assert_eq!(parsed.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64, ms);
        }
    }

    #[test]
    fn stats_count_agreement_with_wilson_interval() {
        let mut acc = StatsAccumulator::default();
        assert_eq!(acc.clone().finish().agreement, None);
        let day1 = parse_timestamp_millis("2026-11-23T23:59:59.999Z").unwrap();
        acc.add("positive", "positive", "v1", day1);
        acc.add("negative", "positive", "v1", day1 + 1);
        acc.add("positive", "positive", "v2", day1 + 1);
        acc.add("neutral", "neutral", "v2", day1 + 2);
        let st = acc.finish();
        assert_eq!(st.total, 4);
        assert_eq!(st.by_label["positive"], 2);
        assert_eq!(st.by_day["2026-11-23"]["positive"], 1);
        assert_eq!(st.by_day["2026-11-24"].values().sum::<u64>(), 3);
        assert_eq!(st.by_model_version["v2"], 2);
        assert_eq!(st.agreement, Some(0.75));
        assert_eq!(st.agreement_ci95, wilson_interval(3, 4, Z_95));
    }
}
