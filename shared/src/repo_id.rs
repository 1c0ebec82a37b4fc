//! "Is this a Hub repo id?", decided once: the trainer (`import --from`, model stores, feedback
//! datasets), the server (`--dataset`) and the page (`?model=`) all parse a [`RepoId`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Longest owner or name the Hub accepts.
pub const MAX_PART_CHARS: usize = 96;

/// A Hugging Face Hub repository id, `owner/name`, by the rules the Hub and its official client
/// (`huggingface_hub.utils.validate_repo_id`) apply: each part 1-96 of `A-Z a-z 0-9 _ - .`,
/// starting and ending with a letter, digit or `_`, without `--` or `..`; the name does not
/// end in `.git`. Ids without an owner (the Hub's oldest models) are not accepted: they are
/// redirects to an `owner/name` today, and a bare word is more likely a local folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    id: String,
    slash: usize,
}

/// Why a string is not a repo id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a Hub repo id (owner/name): {reason}")]
pub struct RepoIdError {
    pub input: String,
    pub reason: &'static str,
}

impl RepoId {
    pub fn owner(&self) -> &str {
        &self.id[..self.slash]
    }

    pub fn name(&self) -> &str {
        &self.id[self.slash + 1..]
    }

    /// `owner/name`.
    pub fn as_str(&self) -> &str {
        &self.id
    }
}

fn check_part(part: &str) -> Result<(), &'static str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if part.is_empty() {
        return Err("owner and name must not be empty");
    }
    if part.chars().count() > MAX_PART_CHARS {
        return Err("owner and name have at most 96 characters");
    }
    if !part.chars().all(|c| word(c) || c == '-' || c == '.') {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    if !part.starts_with(word) || !part.ends_with(word) {
        return Err("owner and name start and end with a letter, digit or '_'");
    }
    if part.contains("--") || part.contains("..") {
        return Err("'--' and '..' are not allowed");
    }
    Ok(())
}

impl FromStr for RepoId {
    type Err = RepoIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| RepoIdError { input: s.to_owned(), reason };
        let (owner, name) = s.split_once('/').ok_or_else(|| err("it needs exactly one '/'"))?;
        if name.contains('/') {
            return Err(err("it needs exactly one '/'"));
        }
        check_part(owner).map_err(err)?;
        check_part(name).map_err(err)?;
        if name.ends_with(".git") {
            return Err(err("the name must not end in .git"));
        }
        Ok(RepoId { id: s.to_owned(), slash: owner.len() })
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl Serialize for RepoId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

impl<'de> Deserialize<'de> for RepoId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_hub_accepts() {
        for ok in [
            "cardiffnlp/twitter-roberta-base-sentiment-latest",
            "sentence-transformers/all-MiniLM-L6-v2",
            "acme/feedback_logs.v2",
            "a/b",
            "_x/y_",
        ] {
            let id: RepoId = ok.parse().unwrap();
            assert_eq!(id.to_string(), ok);
            assert_eq!(format!("{}/{}", id.owner(), id.name()), ok);
        }
    }

    #[test]
    fn refuses_paths_urls_and_what_the_hub_refuses() {
        for bad in [
            "",
            "gpt2",
            "/model/",
            "./store",
            "../x/y",
            "a/b/c",
            "https://huggingface.co/a/b",
            "a//b",
            "owner/",
            "/name",
            "-a/b",
            "a/b.",
            "a--b/c",
            "a/b..c",
            "a/b.git",
            "a b/c",
            "ä/b",
            &format!("a/{}", "x".repeat(97)),
        ] {
            assert!(bad.parse::<RepoId>().is_err(), "{bad:?} was accepted");
        }
        assert!(format!("a/{}", "x".repeat(96)).parse::<RepoId>().is_ok());
    }

    #[test]
    fn serializes_as_the_plain_string() {
        let id: RepoId = "o/n".parse().unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"o/n\"");
        assert_eq!(serde_json::from_str::<RepoId>("\"o/n\"").unwrap(), id);
        assert!(serde_json::from_str::<RepoId>("\"o/n/x\"").is_err());
    }
}
