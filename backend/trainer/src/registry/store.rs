//! Where published models live: a local directory or a Hub model repo, behind one small
//! interface so `publish`, `rollback` and `nightly` do not care which.

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
}

/// A place that holds the registry and the published bundles.
pub trait ModelStore {
    /// For messages: the directory or `hub:owner/name`.
    fn location(&self) -> String;
    /// A file's bytes, `None` when it does not exist.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes `files` as one change. The Hub applies them in one commit; a directory gets them
    /// one by one in the given order, each durably, so callers put the file that makes the
    /// change visible (`registry.json`) last.
    fn write(&self, files: &[AddFile], summary: &str) -> Result<(), StoreError>;
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

impl ModelStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_path(path)?;
        let full = self.root.join(path);
        match std::fs::read(&full) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path: full, source }),
        }
    }

    fn write(&self, files: &[AddFile], _summary: &str) -> Result<(), StoreError> {
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
        check_path(path)?;
        match self.client.download(&self.repo, path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    fn write(&self, files: &[AddFile], summary: &str) -> Result<(), StoreError> {
        for f in files {
            check_path(&f.path)?;
        }
        self.client.upload_files(&self.repo, files, summary).map_err(|e| self.err(e))?;
        Ok(())
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
