//! The logs dataset (where `sentiment-server` syncs feedback): its layout, its compaction and
//! its card.
//!
//! Layout: every record lives under `data/<instance-id>/` (one folder per server replica), in
//! - shards the server commits, `<NNNNNNNN>.jsonl` (its segment number, 8 digits), and
//! - range files compaction writes, `<FFFFFFFF>-<LLLLLLLL>.jsonl`: the bytes of that
//!   instance's shards `FFFFFFFF` to `LLLLLLLL` (inclusive, consecutive), in order.
//!
//! The server counts a segment as synced when its shard or a range file covering it exists, so
//! compaction never makes it send a segment again. `README.md` is the dataset card
//! ([`card`]): its `configs` point `data_files` at `data/**/*.jsonl`.

pub mod card;
pub mod compact;

use std::fmt;

/// A file of the layout above, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogFile {
    Shard(u64),
    Range(u64, u64),
}

impl LogFile {
    /// Parses `00000012.jsonl` or `00000001-00000288.jsonl`; `None` for anything else.
    pub fn parse(name: &str) -> Option<LogFile> {
        let stem = name.strip_suffix(".jsonl")?;
        let number =
            |s: &str| (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
        match stem.split_once('-') {
            None => number(stem).map(LogFile::Shard),
            Some((a, b)) => match (number(a), number(b)) {
                (Some(a), Some(b)) if a <= b => Some(LogFile::Range(a, b)),
                _ => None,
            },
        }
    }

    pub fn first(self) -> u64 {
        match self {
            LogFile::Shard(n) | LogFile::Range(n, _) => n,
        }
    }

    pub fn last(self) -> u64 {
        match self {
            LogFile::Shard(n) | LogFile::Range(_, n) => n,
        }
    }

    /// Whether segment `n` is in this file.
    pub fn covers(self, n: u64) -> bool {
        self.first() <= n && n <= self.last()
    }
}

impl fmt::Display for LogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogFile::Shard(n) => write!(f, "{n:08}.jsonl"),
            LogFile::Range(a, b) => write!(f, "{a:08}-{b:08}.jsonl"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for name in ["00000012.jsonl", "00000001-00000288.jsonl", "00000007-00000007.jsonl"] {
            assert_eq!(LogFile::parse(name).unwrap().to_string(), name);
        }
        for bad in ["12.jsonl", "00000002-00000001.jsonl", "0000000a.jsonl", "00000001.json", "README.md", "x-y.jsonl"]
        {
            assert_eq!(LogFile::parse(bad), None, "{bad}");
        }
        assert!(LogFile::Range(3, 9).covers(3) && LogFile::Range(3, 9).covers(9) && !LogFile::Range(3, 9).covers(10));
    }
}
