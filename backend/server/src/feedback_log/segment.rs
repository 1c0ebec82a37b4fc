//! One segment file: naming, listing, and the replay that cuts a torn tail.

use super::disk::{Disk, DiskFile};
use super::LogError;
use shared::FeedbackRecord;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// Sub-directory of the data dir that holds the segments.
pub const SEGMENTS_DIR: &str = "segments";

/// `00000042.jsonl`: sequence numbers are zero-padded so names sort in write order.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:08}.jsonl")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".jsonl")?;
    (stem.len() == 8 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

/// What is known about one segment. All but the newest segment are sealed: never written again.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub seq: u64,
    /// File name, e.g. `00000001.jsonl`; also the file name in the Hub dataset.
    pub name: String,
    pub path: PathBuf,
    pub records: u64,
    pub bytes: u64,
    pub sealed: bool,
    /// `received_at` of its first record (ms since the epoch): the age of the oldest record
    /// not yet synced is the sync lag.
    pub first_ms: Option<i64>,
}

/// Segment sequence numbers present in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut seqs = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Result of replaying one segment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Replay {
    pub records: u64,
    /// Length of the valid prefix: every byte before it belongs to a complete record line.
    pub valid_len: u64,
    /// Bytes after `valid_len` that were cut away (only ever in the newest segment).
    pub cut_bytes: u64,
}

/// Reads every record of a segment in order and hands it to `each`.
///
/// Lines that do not parse are tolerated only at the very end of the newest segment
/// (`may_cut_tail`): that is a write the crash interrupted, never acknowledged, and it is cut
/// away (truncate + fsync). An unreadable line followed by a good one, or any damage in a
/// sealed segment, is corruption and stops the start with an error rather than dropping data.
pub fn replay(path: &Path, may_cut_tail: bool, mut each: impl FnMut(FeedbackRecord)) -> Result<Replay, LogError> {
    let bytes = fs::read(path).map_err(|e| LogError::io("read", path, e))?;
    let mut out = Replay::default();
    let mut first_bad: Option<(u64, String)> = None;
    let mut pos = 0usize;
    let mut line_no = 0u64;
    while pos < bytes.len() {
        line_no += 1;
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // No newline: an interrupted write.
            first_bad.get_or_insert((line_no, "line has no end".into()));
            break;
        };
        let line = &bytes[pos..pos + nl];
        match serde_json::from_slice::<FeedbackRecord>(line) {
            Ok(rec) => {
                if let Some((line, reason)) = first_bad.take() {
                    return Err(LogError::Corrupt { path: path.to_owned(), line, reason });
                }
                each(rec);
                out.records += 1;
                out.valid_len = (pos + nl + 1) as u64;
            }
            Err(e) => {
                first_bad.get_or_insert((line_no, e.to_string()));
            }
        }
        pos += nl + 1;
    }
    let tail = bytes.len() as u64 - out.valid_len;
    if tail > 0 {
        let (line, reason) = first_bad.unwrap_or((line_no, "trailing bytes".into()));
        if !may_cut_tail {
            return Err(LogError::Corrupt { path: path.to_owned(), line, reason });
        }
        tracing::warn!(path = %path.display(), line, %reason, bytes = tail,
            "cutting a torn last write from the newest segment");
        let f = OpenOptions::new().write(true).open(path).map_err(|e| LogError::io("open", path, e))?;
        f.set_len(out.valid_len).map_err(|e| LogError::io("truncate", path, e))?;
        f.sync_all().map_err(|e| LogError::io("fsync", path, e))?;
        out.cut_bytes = tail;
    }
    Ok(out)
}

/// Creates an empty segment and makes its directory entry durable.
pub fn create_segment(disk: &dyn Disk, dir: &Path, seq: u64) -> Result<(Box<dyn DiskFile>, PathBuf), LogError> {
    let path = dir.join(segment_name(seq));
    let file = disk.create(&path).map_err(|e| LogError::io("create", &path, e))?;
    disk.sync_dir(dir).map_err(|e| LogError::io("fsync", dir, e))?;
    Ok((file, path))
}

/// Opens an existing segment for appending.
pub fn open_for_append(disk: &dyn Disk, path: &Path) -> Result<Box<dyn DiskFile>, LogError> {
    disk.open_append(path).map_err(|e| LogError::io("open", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_parse() {
        assert_eq!(segment_name(42), "00000042.jsonl");
        assert_eq!(parse_segment_name("00000042.jsonl"), Some(42));
        assert_eq!(parse_segment_name("0000042.jsonl"), None);
        assert_eq!(parse_segment_name("00000042.jsonl.tmp"), None);
    }
}
