//! Downloads into the HF cache, laid out as the official client lays it out
//! (`<cache>/models--owner--name/{blobs/<etag>, snapshots/<commit>/<file>, refs/<revision>}`),
//! so a checkpoint fetched by `huggingface_hub` is not fetched again, and the reverse.

use crate::{HubClient, HubError, Repo, RepoType};
use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("{repo}@{commit} has no file {file}")]
    Missing { repo: String, commit: String, file: String },
    #[error("{file}: the Hub gave no etag, so it cannot be cached")]
    NoEtag { file: String },
    #[error("{file}: the download's sha256 is {got}, the Hub said {want}")]
    Corrupt { file: String, want: String, got: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The HF cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfCache {
    root: PathBuf,
}

/// Files of one commit, in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `<cache>/<repo folder>/snapshots/<commit>`.
    pub dir: PathBuf,
    pub commit: String,
}

impl HfCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HfCache { root: root.into() }
    }

    /// `HF_HUB_CACHE`, else `$HF_HOME/hub` (see [`crate::HubConfig::from_env`] for `HF_HOME`).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match var("HF_HUB_CACHE") {
            Some(dir) => HfCache::new(dir),
            None => HfCache::new(crate::config::hf_home(&var).join("hub")),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `models--owner--name` (or `datasets--…`, `spaces--…`).
    fn repo_dir(&self, repo: &Repo) -> PathBuf {
        let kind = match repo.repo_type {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        };
        self.root.join(format!("{kind}--{}--{}", repo.id.owner(), repo.id.name()))
    }

    /// Makes `files` of `repo` at `commit` present in the cache, downloading those it lacks
    /// (`progress(file, bytes so far, total)`), records `repo.revision → commit` in `refs/`,
    /// and returns the snapshot folder.
    pub fn download(
        &self,
        client: &HubClient,
        repo: &Repo,
        commit: &str,
        files: &[String],
        mut progress: impl FnMut(&str, u64, Option<u64>),
    ) -> Result<Snapshot, SnapshotError> {
        let repo_dir = self.repo_dir(repo);
        let dir = repo_dir.join("snapshots").join(commit);
        let pinned = repo.clone().at_revision(commit);
        for file in files {
            let target = dir.join(file);
            if target.exists() {
                continue;
            }
            let meta = client.file_metadata(&pinned, file)?.ok_or_else(|| SnapshotError::Missing {
                repo: repo.id.to_string(),
                commit: commit.to_owned(),
                file: file.clone(),
            })?;
            let etag = meta.etag.ok_or_else(|| SnapshotError::NoEtag { file: file.clone() })?;
            let blob = repo_dir.join("blobs").join(&etag);
            if !blob.exists() {
                fetch_blob(client, &pinned, file, &etag, &blob, &mut progress)?;
            }
            link(&blob, &target, file, &etag)?;
        }
        if repo.revision != commit {
            let refs = repo_dir.join("refs");
            let path = refs.join(&repo.revision);
            let io = |source| SnapshotError::Io { path: path.clone(), source };
            std::fs::create_dir_all(path.parent().unwrap_or(&refs)).map_err(io)?;
            std::fs::write(&path, commit).map_err(io)?;
        }
        Ok(Snapshot { dir, commit: commit.to_owned() })
    }
}

/// Downloads to `<blob>.incomplete`, checks an LFS file's sha256 (its etag), renames into place.
fn fetch_blob(
    client: &HubClient,
    repo: &Repo,
    file: &str,
    etag: &str,
    blob: &Path,
    progress: &mut impl FnMut(&str, u64, Option<u64>),
) -> Result<(), SnapshotError> {
    let tmp = blob.with_extension("incomplete");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    std::fs::create_dir_all(blob.parent().expect("blobs/")).map_err(io(blob))?;
    let mut out = HashingWriter { file: std::fs::File::create(&tmp).map_err(io(&tmp))?, hash: sha2::Sha256::new() };
    client.download_to(repo, file, &mut out, |done, total| progress(file, done, total))?;
    out.file.sync_all().map_err(io(&tmp))?;
    let is_sha256 = etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit());
    let got = hex::encode(out.hash.finalize());
    if is_sha256 && !got.eq_ignore_ascii_case(etag) {
        let _ = std::fs::remove_file(&tmp);
        return Err(SnapshotError::Corrupt { file: file.to_owned(), want: etag.to_owned(), got });
    }
    std::fs::rename(&tmp, blob).map_err(io(blob))
}

struct HashingWriter {
    file: std::fs::File,
    hash: sha2::Sha256,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// `snapshots/<commit>/<file>` → `../../blobs/<etag>` (a relative symlink, as the official
/// client makes; a copy where symlinks are not available).
fn link(blob: &Path, target: &Path, file: &str, etag: &str) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io { path: target.to_path_buf(), source };
    std::fs::create_dir_all(target.parent().expect("snapshots/<commit>/")).map_err(io)?;
    #[cfg(unix)]
    {
        let up = "../".repeat(2 + file.matches('/').count());
        let _ = blob;
        std::os::unix::fs::symlink(format!("{up}blobs/{etag}"), target).map_err(io)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, etag);
        std::fs::copy(blob, target).map(|_| ()).map_err(io)
    }
}
