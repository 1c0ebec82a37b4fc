//! `registry.json`: every published version with its metrics, and which one is champion.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::REGISTRY_FORMAT_VERSION;

/// `registry.json`: every published version with its metrics, and which one is champion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Registry {
    /// [`REGISTRY_FORMAT_VERSION`]; 0 when the file has none.
    pub format_version: u32,
    pub champion: Option<String>,
    pub versions: Vec<VersionEntry>,
    pub history: Vec<ChampionChange>,
    #[serde(skip_serializing_if = "CardSettings::is_empty")]
    pub card: CardSettings,
}

impl Registry {
    /// An empty registry of this build's format.
    #[inline]
    pub fn new() -> Self {
        Registry { format_version: REGISTRY_FORMAT_VERSION, ..Default::default() }
    }

    #[inline]
    pub fn get(&self, version: &str) -> Option<&VersionEntry> {
        self.versions.iter().find(|v| v.version == version)
    }

    #[inline]
    pub fn champion_entry(&self) -> Option<&VersionEntry> {
        self.champion.as_deref().and_then(|c| self.get(c))
    }

    /// The change that made `version` champion most recently.
    #[inline]
    pub fn last_change_to(&self, version: &str) -> Option<&ChampionChange> {
        self.history.iter().rev().find(|c| c.to == version)
    }

    /// Versions that were champion once and rolled back, with when.
    #[inline]
    pub fn rolled_back(&self) -> impl Iterator<Item = (&str, &str)> {
        self.history
            .iter()
            .filter(|c| c.kind == ChangeKind::Rollback)
            .filter_map(|c| c.from.as_deref().map(|from| (from, c.at.as_str())))
    }
}

/// One published version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionEntry {
    pub version: String,
    pub parent_version: Option<String>,
    pub created_at: String,
    pub published_at: String,
    pub source_repo: String,
    pub quantization: String,
    /// Total bytes of the bundle's files.
    pub size: u64,
    pub model_sha256: String,
    /// The bundle's folder in the store.
    pub path: String,
    /// The float checkpoint's folder, when one was published.
    pub checkpoint: Option<String>,
    pub metrics: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Value>,
}

impl VersionEntry {
    #[inline]
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).and_then(Value::as_f64)
    }

    /// The agreement the monitor expects of this version (`agreement_baseline`).
    #[inline]
    pub fn baseline(&self) -> Option<f64> {
        self.metric("agreement_baseline")
    }

    /// The share of each label in this version's training data (`label_mix`), if recorded.
    #[inline]
    pub fn label_mix(&self) -> Option<BTreeMap<String, f64>> {
        self.metrics.get("label_mix").and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

open_names! {
    /// What made a version champion.
    pub enum ChangeKind {
        /// `publish` by hand (also what entries written before kinds existed read as).
        Published = "published",
        /// `nightly` promoted a challenger through the gate.
        Promoted = "promoted",
        /// An earlier version was restored: by `rollback`, or by `nightly`'s promotion guard.
        Rollback = "rollback",
    }
    default: ChangeKind::Published;
}

/// A change of champion (publish, promotion or rollback), kept for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChampionChange {
    pub at: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub kind: ChangeKind,
}

/// What the model card says beyond what the versions record (set by `first-champion`, or by
/// `publish --license/--dataset`; kept across changes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CardSettings {
    /// The weights' licence as a Hub licence id (the base model's); `unknown` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Hub datasets the model was trained or evaluated on, besides the logs dataset the
    /// versions' lineage names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
}

impl CardSettings {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.license.is_none() && self.datasets.is_empty()
    }

    /// `self` with what `other` sets.
    #[inline]
    pub fn updated(&self, other: &CardSettings) -> CardSettings {
        let mut datasets = self.datasets.clone();
        datasets.extend(other.datasets.iter().filter(|d| !self.datasets.contains(d)).cloned());
        CardSettings { license: other.license.clone().or_else(|| self.license.clone()), datasets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_kinds_keep_names_this_build_does_not_know() {
        let all = r#"["published","promoted","rollback","retired"]"#;
        let kinds: Vec<ChangeKind> = serde_json::from_str(all).unwrap();
        assert_eq!(kinds[..3], [ChangeKind::Published, ChangeKind::Promoted, ChangeKind::Rollback]);
        assert_eq!(kinds[3], ChangeKind::Other("retired".into()));
        assert_eq!(serde_json::to_string(&kinds).unwrap(), all);
    }

    #[test]
    fn registries_read_with_missing_and_unknown_fields() {
        let reg: Registry = serde_json::from_str(
            r#"{"format_version": 1, "champion": "v2", "something_new": {"a": 1},
                "versions": [{"version": "v1", "metrics": {"agreement_baseline": 0.8,
                                                          "label_mix": {"negative": 0.5, "positive": 0.5}}},
                             {"version": "v2", "new_field": true}],
                "history": [{"at": "t", "to": "v1", "reason": "first"},
                            {"at": "u", "from": "v1", "to": "v2", "reason": "gate", "kind": "promoted"},
                            {"at": "w", "from": "v2", "to": "v1", "reason": "guard", "kind": "rollback"}]}"#,
        )
        .unwrap();
        assert_eq!(reg.champion_entry().unwrap().version, "v2");
        assert_eq!(reg.get("v1").unwrap().baseline(), Some(0.8));
        assert_eq!(reg.get("v1").unwrap().label_mix().unwrap()["negative"], 0.5);
        assert_eq!(reg.history[0].kind, ChangeKind::Published);
        assert_eq!(reg.last_change_to("v2").unwrap().kind, ChangeKind::Promoted);
        assert_eq!(reg.rolled_back().collect::<Vec<_>>(), [("v2", "w")]);
        assert_eq!(serde_json::from_str::<Registry>("{}").unwrap().format_version, 0);
    }
}
