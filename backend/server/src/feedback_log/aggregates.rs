//! Running aggregates of the stored records, kept per UTC hour as records are appended (and
//! rebuilt from the log at start), so `GET /api/feedback/stats` and `/metrics` never scan
//! records. Everything here is bounded whatever clients send: model versions per hour are
//! capped (the rest count as [`OTHER_VERSION`]), answers list at most [`MAX_VERSIONS_IN_ANSWER`]
//! versions, and hours older than the retention are dropped.

use shared::feedback::{format_timestamp_millis, wilson_interval, FeedbackStats, Z_95};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Distinct model versions counted on their own within one hour; more count as [`OTHER_VERSION`].
pub const MAX_VERSIONS_PER_HOUR: usize = 16;
/// Versions listed in a stats answer or as metric series (the most frequent); the rest are summed.
pub const MAX_VERSIONS_IN_ANSWER: usize = 20;
/// Stands for every version beyond the caps. Not a valid model version (parentheses), so it
/// never collides with one.
pub const OTHER_VERSION: &str = "(other)";

const HOUR_MS: i64 = 3_600_000;

/// The UTC hour (hours since the Unix epoch) of a time in milliseconds.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// Counts of one group of records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub n: u64,
    /// Records whose `predicted` equals the user's `label`.
    pub agree: u64,
    /// Label → records (a few labels: a vector beats a map).
    pub labels: Vec<(Arc<str>, u64)>,
}

impl Counts {
    fn add(&mut self, label: &str, agree: bool) {
        self.n += 1;
        self.agree += u64::from(agree);
        match self.labels.iter_mut().find(|(l, _)| &**l == label) {
            Some((_, c)) => *c += 1,
            None => self.labels.push((Arc::from(label), 1)),
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.n += other.n;
        self.agree += other.agree;
        for (label, c) in &other.labels {
            match self.labels.iter_mut().find(|(l, _)| l == label) {
                Some((_, mine)) => *mine += c,
                None => self.labels.push((label.clone(), *c)),
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Hour {
    versions: Vec<(Arc<str>, Counts)>,
    other: Counts,
}

impl Hour {
    fn each(&self) -> impl Iterator<Item = (&str, &Counts)> {
        self.versions.iter().map(|(v, c)| (&**v, c)).chain(std::iter::once((OTHER_VERSION, &self.other)))
    }
}

/// Agreement of one model version over a window (the `/metrics` quality figures).
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub model_version: String,
    pub n: u64,
    pub agree: u64,
    /// Wilson 95 % interval of `agree / n`.
    pub wilson: [f64; 2],
}

/// The aggregates: per hour, per model version, counts by label and agreement; plus all-time
/// counts by label (they survive the hours' retention, for Prometheus counters).
#[derive(Debug, Default)]
pub struct Aggregates {
    hours: BTreeMap<i64, Hour>,
    all_time: Counts,
}

impl Aggregates {
    /// Counts one record.
    pub fn add(&mut self, label: &str, predicted: &str, model_version: &str, received_ms: i64) {
        let agree = label == predicted;
        self.all_time.add(label, agree);
        let hour = self.hours.entry(hour_of(received_ms)).or_default();
        if let Some((_, c)) = hour.versions.iter_mut().find(|(v, _)| &**v == model_version) {
            c.add(label, agree);
        } else if hour.versions.len() < MAX_VERSIONS_PER_HOUR && model_version != OTHER_VERSION {
            let mut c = Counts::default();
            c.add(label, agree);
            hour.versions.push((Arc::from(model_version), c));
        } else {
            hour.other.add(label, agree);
        }
    }

    /// Drops hours before `hour` (their records still count in the all-time totals).
    pub fn prune_before(&mut self, hour: i64) {
        self.hours = self.hours.split_off(&hour);
    }

    /// Oldest hour kept, if any.
    pub fn first_hour(&self) -> Option<i64> {
        self.hours.keys().next().copied()
    }

    /// All-time records by label.
    pub fn all_time(&self) -> &Counts {
        &self.all_time
    }

    /// Stats over the hours from `since_hour` on, optionally for one version (or
    /// [`OTHER_VERSION`]). Costs one pass over the kept hours, never over records.
    pub fn stats(&self, since_hour: Option<i64>, model_version: Option<&str>) -> FeedbackStats {
        let mut total = Counts::default();
        let mut by_day: BTreeMap<String, Counts> = BTreeMap::new();
        let mut by_version: BTreeMap<&str, u64> = BTreeMap::new();
        for (&h, hour) in self.hours.range(since_hour.unwrap_or(i64::MIN)..) {
            for (v, c) in hour.each() {
                if c.n == 0 || model_version.is_some_and(|m| m != v) {
                    continue;
                }
                total.merge(c);
                let day = format_timestamp_millis(h * HOUR_MS)[..10].to_owned();
                by_day.entry(day).or_default().merge(c);
                *by_version.entry(v).or_default() += c.n;
            }
        }
        FeedbackStats {
            total: total.n,
            by_label: to_map(&total),
            by_day: by_day.iter().map(|(d, c)| (d.clone(), to_map(c))).collect(),
            by_model_version: top_versions(by_version.into_iter().map(|(v, n)| (v, n, n)))
                .into_iter()
                .map(|(v, n, _)| (v, n))
                .collect(),
            agreement: (total.n > 0).then(|| total.agree as f64 / total.n as f64),
            agreement_ci95: wilson_interval(total.agree, total.n, Z_95),
        }
    }

    /// Agreement per model version over the hours from `since_hour` on: the most frequent
    /// [`MAX_VERSIONS_IN_ANSWER`] versions, then [`OTHER_VERSION`] for the rest (if any).
    pub fn agreement_since(&self, since_hour: i64) -> Vec<Agreement> {
        let mut per: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for hour in self.hours.range(since_hour..).map(|(_, h)| h) {
            for (v, c) in hour.each() {
                if c.n > 0 {
                    let e = per.entry(v).or_default();
                    e.0 += c.n;
                    e.1 += c.agree;
                }
            }
        }
        top_versions(per.into_iter().map(|(v, (n, a))| (v, n, a)))
            .into_iter()
            .map(|(v, n, agree)| Agreement {
                model_version: v,
                n,
                agree,
                wilson: wilson_interval(agree, n, Z_95).unwrap_or([0.0, 1.0]),
            })
            .collect()
    }
}

fn to_map(c: &Counts) -> BTreeMap<String, u64> {
    c.labels.iter().map(|(l, n)| (l.to_string(), *n)).collect()
}

/// Keeps the [`MAX_VERSIONS_IN_ANSWER`] versions with the most records and sums the rest (and
/// any [`OTHER_VERSION`]) under [`OTHER_VERSION`]. Items are (version, n, x) with x summed too.
fn top_versions<'a>(items: impl Iterator<Item = (&'a str, u64, u64)>) -> Vec<(String, u64, u64)> {
    let mut all: Vec<(&str, u64, u64)> = items.collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = Vec::new();
    let mut other = (0, 0);
    for (v, n, x) in all {
        if v != OTHER_VERSION && out.len() < MAX_VERSIONS_IN_ANSWER {
            out.push((v.to_owned(), n, x));
        } else {
            other.0 += n;
            other.1 += x;
        }
    }
    if other.0 > 0 {
        out.push((OTHER_VERSION.to_owned(), other.0, other.1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::feedback::parse_timestamp_millis;

    #[test]
    fn versions_are_capped_per_hour_and_per_answer() {
        let mut a = Aggregates::default();
        let t = parse_timestamp_millis("2026-11-20T10:15:00Z").unwrap();
        // 1,000 distinct versions, 10 per hour: each hour keeps all, answers list 20 + the rest.
        for i in 0..1000 {
            a.add("positive", "positive", &format!("v{i}"), t + (i / 10) * HOUR_MS);
        }
        let st = a.stats(None, None);
        assert_eq!(st.total, 1000);
        assert_eq!(st.by_model_version.len(), MAX_VERSIONS_IN_ANSWER + 1);
        assert_eq!(st.by_model_version[OTHER_VERSION], 1000 - MAX_VERSIONS_IN_ANSWER as u64);
        assert_eq!(a.agreement_since(0).len(), MAX_VERSIONS_IN_ANSWER + 1);
        // 1,000 versions in one hour: 16 on their own, the rest as one.
        let mut b = Aggregates::default();
        for i in 0..1000 {
            b.add("positive", "negative", &format!("w{i}"), t);
        }
        assert_eq!(b.hours[&hour_of(t)].versions.len(), MAX_VERSIONS_PER_HOUR);
        let w = b.agreement_since(0);
        assert_eq!(w.len(), MAX_VERSIONS_PER_HOUR + 1);
        assert_eq!(w.last().unwrap().model_version, OTHER_VERSION);
        assert_eq!(w.last().unwrap().n, 1000 - MAX_VERSIONS_PER_HOUR as u64);
    }

    #[test]
    fn hours_filter_and_prune_keep_all_time_totals() {
        let mut a = Aggregates::default();
        let h1 = parse_timestamp_millis("2026-11-20T10:00:00Z").unwrap();
        let h2 = h1 + HOUR_MS;
        a.add("positive", "positive", "v1", h1);
        a.add("negative", "positive", "v1", h2);
        a.add("negative", "negative", "v2", h2 + 5);
        assert_eq!(a.stats(Some(hour_of(h2)), None).total, 2);
        assert_eq!(a.stats(None, Some("v1")).agreement, Some(0.5));
        let w = a.agreement_since(hour_of(h2));
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].n, w[0].agree), (1, 0));
        a.prune_before(hour_of(h2));
        assert_eq!(a.stats(None, None).total, 2);
        assert_eq!(a.all_time().n, 3);
        assert_eq!(a.first_hour(), Some(hour_of(h2)));
    }
}
