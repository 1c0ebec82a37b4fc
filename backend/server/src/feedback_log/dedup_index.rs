//! The ids of records whose segments left the disk (retention), so a retry of an old
//! submission is still recognised: `<data-dir>/dedup.idx`, a sorted array of fixed-size entries
//! (id, fingerprint, `received_at` in ms; [`ENTRY`] bytes each) in blocks of [`BLOCK`] entries.
//! Only the first id of each block is held in memory (16 bytes per 256 records: 625 KB for 10
//! million), so a lookup is one positioned read of one block (8 KiB) and a binary search in it;
//! opening reads one entry per block. Memory and start time stay small with a long history.
//!
//! It only grows by [`merge`]: the old file and the new entries are merged into a temporary
//! file, which is fsync'd and renamed over the old one (then the directory is fsync'd), so a
//! crash leaves either the old index or the new one, never half of one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// File name in the data dir.
pub const DEDUP_INDEX_FILE: &str = "dedup.idx";
/// Bytes per entry: id (16), fingerprint (8), `received_at` ms (8), little-endian.
pub const ENTRY: usize = 32;

/// Entries per block: one read per lookup.
pub const BLOCK: u64 = 256;

/// One retired record: id key, fingerprint, `received_at` in ms.
pub type Entry = (u128, u64, i64);

/// Read-only view of the index file.
#[derive(Debug)]
pub struct DedupIndex {
    file: Option<File>,
    entries: u64,
    /// The first id of each block.
    fences: Vec<u128>,
}

impl DedupIndex {
    /// Opens `<data_dir>/dedup.idx` (absent: an empty index).
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let path = data_dir.join(DEDUP_INDEX_FILE);
        match File::open(&path) {
            Ok(file) => {
                let len = file.metadata()?.len();
                if len % ENTRY as u64 != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is {len} bytes, not a whole number of {ENTRY}-byte entries", path.display()),
                    ));
                }
                let entries = len / ENTRY as u64;
                let mut fences = Vec::with_capacity(entries.div_ceil(BLOCK) as usize);
                let mut buf = [0u8; ENTRY];
                for block in 0..entries.div_ceil(BLOCK) {
                    file.read_exact_at(&mut buf, block * BLOCK * ENTRY as u64)?;
                    fences.push(decode(&buf).0);
                }
                Ok(DedupIndex { file: Some(file), entries, fences })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(DedupIndex { file: None, entries: 0, fences: Vec::new() })
            }
            Err(e) => Err(e),
        }
    }

    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// (fingerprint, `received_at` ms) of `key`, if it was retired.
    pub fn get(&self, key: u128) -> io::Result<Option<(u64, i64)>> {
        let Some(file) = &self.file else { return Ok(None) };
        // The block whose first id is the last one <= key.
        let Some(block) = self.fences.partition_point(|&f| f <= key).checked_sub(1) else { return Ok(None) };
        let first = block as u64 * BLOCK;
        let count = BLOCK.min(self.entries - first) as usize;
        let mut buf = vec![0u8; count * ENTRY];
        file.read_exact_at(&mut buf, first * ENTRY as u64)?;
        let entry = |i: usize| decode(buf[i * ENTRY..(i + 1) * ENTRY].try_into().expect("one entry"));
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, fp, ms) = entry(mid);
            match k.cmp(&key) {
                std::cmp::Ordering::Equal => return Ok(Some((fp, ms))),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }
}

fn encode(e: &Entry) -> [u8; ENTRY] {
    let mut b = [0u8; ENTRY];
    b[..16].copy_from_slice(&e.0.to_le_bytes());
    b[16..24].copy_from_slice(&e.1.to_le_bytes());
    b[24..].copy_from_slice(&e.2.to_le_bytes());
    b
}

fn decode(b: &[u8; ENTRY]) -> Entry {
    (
        u128::from_le_bytes(b[..16].try_into().expect("16 bytes")),
        u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
        i64::from_le_bytes(b[24..].try_into().expect("8 bytes")),
    )
}

/// Merges `new` into `<data_dir>/dedup.idx` (streamed: memory is `new` plus two buffers) and
/// makes the result durable. An id already in the index keeps its first entry.
pub fn merge(data_dir: &Path, mut new: Vec<Entry>) -> io::Result<()> {
    new.sort_unstable_by_key(|e| e.0);
    new.dedup_by_key(|e| e.0);
    let path = data_dir.join(DEDUP_INDEX_FILE);
    let tmp: PathBuf = data_dir.join(format!("{DEDUP_INDEX_FILE}.tmp"));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut old = match File::open(&path) {
        Ok(f) => Some(BufReader::with_capacity(1 << 20, f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut next_old = || -> io::Result<Option<Entry>> {
        let Some(r) = old.as_mut() else { return Ok(None) };
        let mut b = [0u8; ENTRY];
        match r.read_exact(&mut b) {
            Ok(()) => Ok(Some(decode(&b))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    };
    let mut a = next_old()?;
    let mut fresh = new.into_iter().peekable();
    loop {
        match (a, fresh.peek().copied()) {
            (None, None) => break,
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.write_all(&encode(&x))?;
                fresh.next();
                a = next_old()?;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.write_all(&encode(&x))?;
                a = next_old()?;
            }
            (Some(x), None) => {
                out.write_all(&encode(&x))?;
                a = next_old()?;
            }
            (_, Some(y)) => {
                out.write_all(&encode(&y))?;
                fresh.next();
            }
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    OpenOptions::new().read(true).open(data_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_entries_are_found_and_others_are_not() {
        let dir = std::env::temp_dir().join(format!("dedup-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(DedupIndex::open(&dir).unwrap().is_empty());
        merge(&dir, (0..1000u128).map(|i| (i * 7919 % 100_003, i as u64, i as i64)).collect()).unwrap();
        // A second merge with overlaps: the first entry of an id is kept.
        merge(&dir, vec![(7919, 999_999, 0), (5, 5, 5), (u128::MAX, 1, 2)]).unwrap();
        let idx = DedupIndex::open(&dir).unwrap();
        assert_eq!(idx.len(), 1002);
        assert_eq!(idx.get(7919).unwrap(), Some((1, 1)));
        assert_eq!(idx.get(5).unwrap(), Some((5, 5)));
        assert_eq!(idx.get(u128::MAX).unwrap(), Some((1, 2)));
        assert_eq!(idx.get(999 * 7919 % 100_003).unwrap(), Some((999, 999)));
        assert_eq!(idx.get(4).unwrap(), None);
        assert_eq!(idx.get(100_004).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
