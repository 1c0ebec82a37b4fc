//! Bundle file URLs. The base is a folder: same-origin `/model/` or a Hub model repo's
//! `https://huggingface.co/<owner>/<name>/resolve/main/`.

/// The base with exactly one trailing slash, so file names join cleanly.
pub fn normalize_base(base: &str) -> String {
    let trimmed = base.trim();
    let trimmed = if trimmed.is_empty() { "/model/" } else { trimmed };
    format!("{}/", trimmed.trim_end_matches('/'))
}

/// `base` (already normalized) joined with a bundle file name.
pub fn file_url(base: &str, file: &str) -> String {
    format!("{base}{}", file.trim_start_matches('/'))
}

/// A bare Hub repo id (`owner/name`) becomes its `resolve/main/` URL; anything else is kept.
pub fn expand_hub_repo(spec: &str) -> String {
    let s = spec.trim();
    match s.parse::<shared::RepoId>() {
        Ok(repo) => format!("https://huggingface.co/{repo}/resolve/main/"),
        Err(_) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_and_files_join() {
        assert_eq!(normalize_base(""), "/model/");
        assert_eq!(normalize_base("/model"), "/model/");
        assert_eq!(normalize_base("https://h.co/a/b/resolve/main//"), "https://h.co/a/b/resolve/main/");
        assert_eq!(file_url("/model/", "manifest.json"), "/model/manifest.json");
        assert_eq!(expand_hub_repo("acme/sentiment"), "https://huggingface.co/acme/sentiment/resolve/main/");
        assert_eq!(expand_hub_repo("/model/"), "/model/");
        assert_eq!(expand_hub_repo("https://x.y/a/b"), "https://x.y/a/b");
    }
}
