//! Labelled text datasets: a TweetEval pair (`X_text.txt` + `X_labels.txt`), JSONL
//! (`{"text", "label"}`) or CSV (`text,label` columns). Labels as ids or names.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    /// Index into the model's labels.
    pub label: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {detail}", path.display())]
    Line { path: PathBuf, line: usize, detail: String },
    #[error("{}: {detail}", path.display())]
    Format { path: PathBuf, detail: String },
}

/// Reads a dataset, choosing the format from the file name: `*_text.txt` (TweetEval pair),
/// `*.jsonl`, `*.csv`.
pub fn load_examples(path: &Path, labels: &[String]) -> Result<Vec<Example>, DataError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(stem) = name.strip_suffix("_text.txt") {
        let labels_path = path.with_file_name(format!("{stem}_labels.txt"));
        return load_tweeteval(path, &labels_path, labels);
    }
    if name.ends_with(".jsonl") {
        return load_jsonl(path, labels);
    }
    if name.ends_with(".csv") {
        return load_csv(path, labels);
    }
    Err(DataError::Format {
        path: path.to_path_buf(),
        detail: "unknown dataset format: expected X_text.txt (with X_labels.txt beside it), .jsonl or .csv".into(),
    })
}

fn read_utf8_lines(path: &Path) -> Result<Vec<String>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|e| DataError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            detail: format!("not valid UTF-8 ({e})"),
        })?;
        lines.push(line.to_string());
    }
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    Ok(lines)
}

/// Parses a label given as an id (`0`) or a name (`negative`).
pub fn parse_label(value: &str, labels: &[String]) -> Result<usize, String> {
    let v = value.trim();
    if let Ok(i) = v.parse::<usize>() {
        if i < labels.len() {
            return Ok(i);
        }
    }
    labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case(v))
        .ok_or_else(|| format!("label {v:?} is not one of {} (or an id 0..{})", labels.join(", "), labels.len() - 1))
}

fn load_tweeteval(text_path: &Path, labels_path: &Path, labels: &[String]) -> Result<Vec<Example>, DataError> {
    let texts = read_utf8_lines(text_path)?;
    let ids = read_utf8_lines(labels_path)?;
    if texts.len() != ids.len() {
        return Err(DataError::Format {
            path: labels_path.to_path_buf(),
            detail: format!("{} labels for {} texts in {}", ids.len(), texts.len(), text_path.display()),
        });
    }
    texts
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (text, id))| {
            let label = parse_label(&id, labels).map_err(|detail| DataError::Line {
                path: labels_path.to_path_buf(),
                line: i + 1,
                detail,
            })?;
            Ok(Example { text, label })
        })
        .collect()
}

fn load_jsonl(path: &Path, labels: &[String]) -> Result<Vec<Example>, DataError> {
    let mut out = Vec::new();
    for (i, line) in read_utf8_lines(path)?.into_iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |detail: String| DataError::Line { path: path.to_path_buf(), line: i + 1, detail };
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let text = v.get("text").and_then(|t| t.as_str()).ok_or_else(|| err("no string field \"text\"".into()))?;
        let label = match v.get("label") {
            Some(serde_json::Value::String(s)) => parse_label(s, labels),
            Some(serde_json::Value::Number(n)) => parse_label(&n.to_string(), labels),
            _ => Err("no field \"label\" (a name or an id)".into()),
        }
        .map_err(err)?;
        out.push(Example { text: text.to_string(), label });
    }
    Ok(out)
}

fn load_csv(path: &Path, labels: &[String]) -> Result<Vec<Example>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| DataError::Format { path: path.to_path_buf(), detail: e.to_string() })?;
    let headers =
        reader.headers().map_err(|e| DataError::Format { path: path.to_path_buf(), detail: e.to_string() })?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name)).ok_or_else(|| DataError::Format {
            path: path.to_path_buf(),
            detail: format!("no {name:?} column (columns: {})", headers.iter().collect::<Vec<_>>().join(", ")),
        })
    };
    let (tc, lc) = (col("text")?, col("label")?);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            DataError::Line { path: path.to_path_buf(), line, detail: e.to_string() }
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let label = parse_label(record.get(lc).unwrap_or(""), labels).map_err(|detail| DataError::Line {
            path: path.to_path_buf(),
            line,
            detail,
        })?;
        out.push(Example { text: record.get(tc).unwrap_or("").to_string(), label });
    }
    Ok(out)
}
