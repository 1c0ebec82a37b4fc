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

/// A manifest's source as the page shows it: a Hub repo id as it is; a local checkpoint by its
/// folder's name only (an import from a directory records its path on the machine that made
/// the bundle, which the page's users have no business seeing).
pub fn source_name(repo_id: &str) -> String {
    let s = repo_id.trim();
    if s.parse::<shared::RepoId>().is_ok() {
        return s.to_string();
    }
    s.trim_end_matches(['/', '\\']).rsplit(['/', '\\']).next().unwrap_or(s).to_string()
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

    #[test]
    fn local_sources_show_their_folder_name_only() {
        assert_eq!(
            source_name("cardiffnlp/twitter-roberta-base-sentiment-latest"),
            "cardiffnlp/twitter-roberta-base-sentiment-latest"
        );
        assert_eq!(source_name("/work/main/fixtures/tiny-roberta-bpe"), "tiny-roberta-bpe");
        assert_eq!(source_name("./runs/ft/"), "ft");
        assert_eq!(source_name("C:\\models\\minilm"), "minilm");
    }
}
