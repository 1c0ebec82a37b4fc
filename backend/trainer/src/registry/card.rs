//! The model card (`README.md` at the store's root): YAML front matter as the Hub reads it
//! (licence, base model, pipeline tag, datasets, `model-index` results from the champion's
//! metrics) and, in prose, the champion's lineage and the registry's history. Written from
//! the registry alone, so every change of champion rewrites it in the same commit.
//!
//! Strings go into the YAML as JSON strings (valid YAML scalars), so no value can break it.

use super::{Registry, VersionEntry};
use hub::RepoId;
use std::fmt::Write;

pub const CARD_FILE: &str = "README.md";

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The last component of a path or URL-like string (lineage may record a machine's paths).
fn file_name(s: &str) -> &str {
    s.rsplit(['/', '\\']).next().unwrap_or(s)
}

/// The version `entry` descends from first (following `parent_version`).
fn root<'a>(registry: &'a Registry, entry: &'a VersionEntry) -> &'a VersionEntry {
    let mut at = entry;
    let mut seen = vec![at.version.as_str()];
    while let Some(parent) = at.parent_version.as_deref().and_then(|p| registry.get(p)) {
        if seen.contains(&parent.version.as_str()) {
            break;
        }
        seen.push(&parent.version);
        at = parent;
    }
    at
}

/// The Hub repo a source string names, if it names one.
fn repo_of(source: &str) -> Option<RepoId> {
    source.parse().ok()
}

/// The logs dataset a version's lineage names (`lineage.feedback.source`), if it is a Hub id.
fn feedback_dataset(entry: &VersionEntry) -> Option<RepoId> {
    entry.lineage.as_ref()?.get("feedback")?.get("source")?.as_str().and_then(repo_of)
}

/// One `model-index` result per metric group of the champion (an object of numbers, such as
/// `gold` or `feedback_holdout`), with the dataset it was measured on.
fn results(entry: &VersionEntry, logs: Option<&RepoId>) -> Vec<String> {
    let lineage = entry.lineage.as_ref();
    let gold = lineage.and_then(|l| l.get("gold_test")).and_then(|g| g.as_str()).map(file_name);
    let mut out = Vec::new();
    for (group, value) in &entry.metrics {
        let Some(fields) = value.as_object() else { continue };
        // The Hub's metric types where one fits; other figures keep their own name.
        let metrics: Vec<(String, String, f64)> = fields
            .iter()
            .filter(|(k, _)| k.as_str() != "n")
            .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
            .map(|(k, x)| {
                let t = match k.as_str() {
                    "macro_recall" => "recall".to_string(),
                    "macro_f1" => "f1".to_string(),
                    other => other.to_string(),
                };
                (k, t, x)
            })
            .collect();
        if metrics.is_empty() {
            continue;
        }
        let n = fields.get("n").and_then(|n| n.as_u64());
        let (dtype, dname, split) = match group.as_str() {
            "gold" => (
                "gold-test-set".to_string(),
                format!("Gold test set{}", gold.map(|g| format!(" ({g})")).unwrap_or_default()),
                "test",
            ),
            g if g.contains("holdout") => (
                logs.map(|l| l.to_string()).unwrap_or_else(|| "feedback".into()),
                format!("Feedback holdout{}", logs.map(|l| format!(" ({l})")).unwrap_or_default()),
                "holdout",
            ),
            g => (g.to_string(), g.replace('_', " "), "test"),
        };
        let dname = match n {
            Some(n) => format!("{dname}, {n} examples"),
            None => dname,
        };
        let mut r = String::new();
        r.push_str("  - task:\n      type: text-classification\n      name: Sentiment analysis\n");
        let _ = writeln!(r, "    dataset:\n      type: {}\n      name: {}\n      split: {split}", q(&dtype), q(&dname));
        r.push_str("    metrics:\n");
        for (key, mtype, value) in metrics {
            let _ = writeln!(
                r,
                "      - type: {}\n        value: {value}\n        name: {}",
                q(&mtype),
                q(&key.replace('_', " "))
            );
        }
        out.push(r);
    }
    out
}

/// The card for `registry`; `repo` is the model repo (None for a local store).
pub fn model_card(registry: &Registry, repo: Option<&RepoId>) -> String {
    let champion = registry.champion.as_deref().and_then(|c| registry.get(c));
    let title = repo.map(|r| r.to_string()).unwrap_or_else(|| "Sentiment Monitor model".into());
    let base = champion.map(|c| root(registry, c)).and_then(|r| repo_of(&r.source_repo)).filter(|b| Some(b) != repo);
    let logs =
        champion.and_then(feedback_dataset).or_else(|| registry.versions.iter().rev().find_map(feedback_dataset));
    let mut datasets: Vec<String> = registry.card.datasets.clone();
    if let Some(l) = &logs {
        if !datasets.contains(&l.to_string()) {
            datasets.push(l.to_string());
        }
    }

    let mut y = String::from("---\n");
    let _ = writeln!(y, "license: {}", q(registry.card.license.as_deref().unwrap_or("unknown")));
    if let Some(b) = &base {
        let _ = writeln!(y, "base_model: {}", q(&b.to_string()));
    }
    y.push_str("pipeline_tag: text-classification\n");
    y.push_str("tags:\n  - sentiment-analysis\n  - sentiment-monitor\n  - gguf\n");
    if !datasets.is_empty() {
        y.push_str("datasets:\n");
        for d in &datasets {
            let _ = writeln!(y, "  - {}", q(d));
        }
    }
    let results = champion.map(|c| results(c, logs.as_ref())).unwrap_or_default();
    if !results.is_empty() {
        let _ = writeln!(y, "model-index:\n  - name: {}\n    results:", q(&title));
        for r in results {
            // Indented under `results:`.
            for line in r.lines() {
                let _ = writeln!(y, "    {line}");
            }
        }
    }
    y.push_str("---\n\n");

    let _ = writeln!(y, "# {title}\n");
    y.push_str(
        "Sentiment of social-media posts (negative, neutral, positive) for Sentiment Monitor: a quantized \
         classifier that runs in the browser (candle compiled to wasm), retrained on user corrections by \
         `sentiment-trainer nightly` and published here with its registry.\n\n",
    );
    match champion {
        Some(c) => {
            let _ = writeln!(
                y,
                "**Champion: `{}`** ({}, {:.1} MB, created {}). The page loads it from this repo's root \
                 (`manifest.json`, `model.gguf`, `tokenizer.json`){}.\n",
                c.version,
                c.quantization,
                c.size as f64 / 1e6,
                c.created_at,
                repo.map(|r| format!(": `https://huggingface.co/{r}/resolve/main/`")).unwrap_or_default()
            );
            y.push_str("## Lineage\n\n");
            let mut at = Some(c);
            let mut seen = Vec::new();
            while let Some(v) = at {
                if seen.contains(&v.version) {
                    break;
                }
                seen.push(v.version.clone());
                let _ = writeln!(y, "- {}", describe(v));
                at = v.parent_version.as_deref().and_then(|p| registry.get(p));
            }
            y.push('\n');
        }
        None => y.push_str("No champion yet.\n\n"),
    }
    if !registry.history.is_empty() {
        y.push_str(
            "## Registry history\n\nEvery change of champion, newest first (`registry.json` has the full record):\n\n",
        );
        y.push_str("| when | from | to | why |\n|---|---|---|---|\n");
        for h in registry.history.iter().rev() {
            let _ = writeln!(
                y,
                "| {} | {} | {} | {} |",
                h.at,
                h.from.as_deref().unwrap_or("—"),
                h.to,
                h.reason.replace('|', "\\|").replace('\n', " ")
            );
        }
        y.push('\n');
    }
    let _ = writeln!(
        y,
        "## Files\n\n- `registry.json`: every published version ({}) with its metrics and lineage, and the champion.\n\
         - `versions/<version>/`: each version's bundle and, when kept, the float checkpoint (`checkpoint/`) the next fine-tune starts from.\n\
         - `manifest.json`, `model.gguf`, `tokenizer.json`: the champion's bundle.",
        registry.versions.len()
    );
    y
}

/// One line of lineage: where a version came from.
fn describe(v: &VersionEntry) -> String {
    let mut s = format!("`{}` ({}, {})", v.version, v.quantization, v.created_at);
    match &v.parent_version {
        Some(p) => {
            let _ = write!(s, ": fine-tuned from `{p}`");
            if let Some(f) = v.lineage.as_ref().and_then(|l| l.get("feedback")) {
                let n = f.get("train_examples").and_then(|x| x.as_u64());
                let h = f.get("holdout_examples").and_then(|x| x.as_u64());
                let src =
                    f.get("source")
                        .and_then(|x| x.as_str())
                        .map(|s| if repo_of(s).is_some() { s } else { file_name(s) });
                if let (Some(n), Some(h)) = (n, h) {
                    let _ = write!(s, " on {n} feedback texts (holdout {h})");
                }
                if let Some(src) = src {
                    let _ = write!(s, " from `{src}`");
                }
            }
            let _ = write!(s, "; weights from `{}`", v.source_repo);
        }
        None => {
            let _ = write!(s, ": imported from `{}`", v.source_repo);
        }
    }
    if let Some(g) = v.metrics.get("gold").and_then(|g| g.get("macro_recall")).and_then(|x| x.as_f64()) {
        let _ = write!(s, "; gold macro recall {:.1} %", g * 100.0);
    }
    s
}
