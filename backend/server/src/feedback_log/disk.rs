//! What the log's writer writes through: the real file system ([`OsDisk`]) in the server, or in
//! tests a [`Disk`] that can lose what was not fsync'd at a simulated power cut (see
//! `tests/power_cut.rs`). A `kill -9` keeps the page cache, so only such a layer shows that the
//! writer's fsyncs are where they must be.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Creates and opens segment files, and makes directory entries durable.
pub trait Disk: Send + Sync + std::fmt::Debug {
    /// Creates a new, empty file for appending (fails if it exists).
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Opens an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// fsync on a directory: entries created in it survive a power cut.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// One open segment file.
pub trait DiskFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// fdatasync: the bytes written so far survive a power cut.
    fn sync_data(&mut self) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// fsync: the bytes and the file's length survive a power cut.
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsDisk;

impl Disk for OsDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(OpenOptions::new().create_new(true).append(true).open(path)?))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(OpenOptions::new().append(true).open(path)?))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl DiskFile for File {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(self, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }
}
