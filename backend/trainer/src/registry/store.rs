//! Where published models live: a local directory or a Hub model repo, behind one small
//! interface so `publish`, `rollback` and `nightly` do not care which.
//!
//! A change that depends on what is there (a new `registry.json` made from the old one) reads
//! and writes through one [`Change`]: on the Hub its commit carries the commit it read as
//! `parentCommit`, so if anyone else committed meanwhile the Hub refuses it and nothing is lost
//! ([`StoreError::Conflict`]); a directory is locked (`.lock`, `flock`) from `begin` until the
//! change is written or dropped, so a second writer waits and then reads the first one's result.

use crate::location::Location;
use hub::{AddFile, HubClient, HubError, Repo};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    HubConfig(#[from] hub::ConfigError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("Hub model repo {repo}: {source}")]
    Hub { repo: String, source: HubError },
    #[error("{0:?} is not a path inside the store")]
    BadPath(String),
    #[error(
        "{location} changed while this change was being made (another publish, rollback or nightly run committed first): nothing was written; look at its registry.json and run the command again if it still applies"
    )]
    Conflict { location: String },
}

/// A place that holds the registry and the published bundles.
pub trait ModelStore {
    /// For messages: the directory or `hub:owner/name`.
    fn location(&self) -> String;
    /// A file's bytes, `None` when it does not exist.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Starts a change: reads see one state of the store, and [`Change::commit`] writes only if
    /// nobody else changed it meanwhile (see the module's doc).
    fn begin(&self) -> Result<Box<dyn Change + '_>, StoreError>;
    /// Writes `files` as one change, whatever is there. The Hub applies them in one commit; a
    /// directory gets them one by one in the given order, each durably, so callers put the file
    /// that makes the change visible (`registry.json`) last.
    fn write(&self, files: &[AddFile], summary: &str) -> Result<(), StoreError> {
        self.begin()?.commit(files, summary)
    }
}

/// One change to a store: consistent reads, then one write that applies only on top of what
/// was read.
pub trait Change {
    fn location(&self) -> String;
    /// A file's bytes in the state this change started from.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The Hub commit this change read (none for a directory).
    fn revision(&self) -> Option<&str>;
    /// Writes `files` as one change; [`StoreError::Conflict`] if the store moved on.
    fn commit(self: Box<Self>, files: &[AddFile], summary: &str) -> Result<(), StoreError>;
}

/// Opens the Hub model repo `owner/name` (with [`HubClient::from_env`]), or else a local
/// directory.
pub fn open_store(location: &str) -> Result<Box<dyn ModelStore>, StoreError> {
    Ok(match Location::parse(location) {
        Location::Local(root) => Box::new(LocalStore { root }),
        Location::Hub(id) => Box::new(HubStore { client: HubClient::from_env()?, repo: Repo::model(id) }),
    })
}

/// Refuses absolute paths and `..`, so a version string cannot write outside the store.
fn check_path(path: &str) -> Result<(), StoreError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadPath(path.to_string()))
    }
}

pub struct LocalStore {
    pub root: PathBuf,
}

/// The lock file at a local store's root.
pub const LOCK_FILE: &str = ".lock";

impl LocalStore {
    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_path(path)?;
        let full = self.root.join(path);
        match std::fs::read(&full) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path: full, source }),
        }
    }

    /// Takes the store's lock (`flock` on `.lock`), waiting for another writer to finish.
    fn lock(&self) -> Result<std::fs::File, StoreError> {
        use std::os::fd::AsRawFd;
        let io = |path: &std::path::Path, source| StoreError::Io { path: path.to_path_buf(), source };
        std::fs::create_dir_all(&self.root).map_err(|e| io(&self.root, e))?;
        let path = self.root.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        // SAFETY: flock on a descriptor this function owns; the lock goes with the file.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            tracing::warn!("waiting for another change to {} to finish (lock {})", self.root.display(), path.display());
            // SAFETY: as above.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(io(&path, std::io::Error::last_os_error()));
            }
        }
        Ok(file)
    }

    fn write_files(&self, files: &[AddFile]) -> Result<(), StoreError> {
        for f in files {
            check_path(&f.path)?;
            let full = self.root.join(&f.path);
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
            }
            crate::bundle_writer::write_durably(&full, &f.content).map_err(|e| match e {
                crate::bundle_writer::BundleWriteError::Io { path, source } => StoreError::Io { path, source },
                other => StoreError::Io { path: full.clone(), source: std::io::Error::other(other.to_string()) },
            })?;
        }
        Ok(())
    }
}

impl ModelStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_file(path)
    }

    fn begin(&self) -> Result<Box<dyn Change + '_>, StoreError> {
        Ok(Box::new(LocalChange { store: self, _lock: self.lock()? }))
    }
}

/// A change to a directory: holds the store's lock until written or dropped.
struct LocalChange<'a> {
    store: &'a LocalStore,
    _lock: std::fs::File,
}

impl Change for LocalChange<'_> {
    fn location(&self) -> String {
        self.store.location()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.read_file(path)
    }

    fn revision(&self) -> Option<&str> {
        None
    }

    fn commit(self: Box<Self>, files: &[AddFile], _summary: &str) -> Result<(), StoreError> {
        self.store.write_files(files)
    }
}

pub struct HubStore {
    pub client: HubClient,
    pub repo: Repo,
}

impl HubStore {
    fn err(&self, source: HubError) -> StoreError {
        StoreError::Hub { repo: self.repo.id.to_string(), source }
    }
}

impl ModelStore for HubStore {
    fn location(&self) -> String {
        format!("hub:{}", self.repo.id)
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_at(&self.repo, path)
    }

    fn begin(&self) -> Result<Box<dyn Change + '_>, StoreError> {
        let head = self.client.repo_info(&self.repo).map_err(|e| self.err(e))?.sha;
        Ok(Box::new(HubChange { store: self, at: self.repo.clone().at_revision(head.clone()), head }))
    }

    fn write(&self, files: &[AddFile], summary: &str) -> Result<(), StoreError> {
        self.commit(files, summary, None)
    }
}

impl HubStore {
    fn read_at(&self, repo: &Repo, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_path(path)?;
        match self.client.download(repo, path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    fn commit(&self, files: &[AddFile], summary: &str, parent: Option<&str>) -> Result<(), StoreError> {
        for f in files {
            check_path(&f.path)?;
        }
        let commit = hub::Commit { summary, add: files, parent, ..Default::default() };
        match self.client.commit(&self.repo, &commit) {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Err(StoreError::Conflict { location: self.location() }),
            Err(e) => Err(self.err(e)),
        }
    }
}

/// A change to a Hub repo: reads at the commit it started from, commits with it as parent.
struct HubChange<'a> {
    store: &'a HubStore,
    head: String,
    at: Repo,
}

impl Change for HubChange<'_> {
    fn location(&self) -> String {
        self.store.location()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.read_at(&self.at, path)
    }

    fn revision(&self) -> Option<&str> {
        Some(&self.head)
    }

    fn commit(self: Box<Self>, files: &[AddFile], summary: &str) -> Result<(), StoreError> {
        self.store.commit(files, summary, Some(&self.head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_store() {
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for good in ["registry.json", "versions/v1/model.gguf"] {
            check_path(good).unwrap();
        }
    }

    #[test]
    fn local_store_reads_back_what_it_wrote() {
        let dir = std::env::temp_dir().join(format!("store-test-{}", std::process::id()));
        let store = LocalStore { root: dir.clone() };
        assert_eq!(store.read("a/b.txt").unwrap(), None);
        store.write(&[AddFile { path: "a/b.txt".into(), content: b"hi".to_vec() }], "s").unwrap();
        assert_eq!(store.read("a/b.txt").unwrap().as_deref(), Some(&b"hi"[..]));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
