//! "A local path or a Hub repo?", for every command that takes either (`import --from`,
//! `publish --to`, `rollback --registry`, `monitor --feedback`, the nightly configuration).

use hub::RepoId;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Hub(RepoId),
}

impl Location {
    /// Something on disk by that name is local; so is anything that is not a Hub repo id
    /// (`owner/name`: [`RepoId`]), such as `./store`, `/data` or `reports`.
    pub fn parse(s: &str) -> Location {
        if Path::new(s).exists() {
            return Location::Local(PathBuf::from(s));
        }
        match s.parse::<RepoId>() {
            Ok(id) => Location::Hub(id),
            Err(_) => Location::Local(PathBuf::from(s)),
        }
    }

    pub fn is_hub(&self) -> bool {
        matches!(self, Location::Hub(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_unless_on_disk() {
        assert!(Location::parse("acme/sentiment").is_hub());
        for local in ["./acme/sentiment", "/abs/path", "store", "a/b/c", "src"] {
            assert!(!Location::parse(local).is_hub(), "{local}");
        }
        // An existing folder of that shape stays local (tests run in the package's folder).
        assert_eq!(Location::parse("src/train"), Location::Local("src/train".into()));
    }
}
