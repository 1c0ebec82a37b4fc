//! The model registry: every published version with its metrics, and which one is champion.
//!
//! Layout of a store (a local directory or a Hub model repo):
//! - `registry.json` — this registry;
//! - `versions/<version>/` — each published bundle (`manifest.json`, `model.gguf`,
//!   `tokenizer.json`), and, when published with one, `checkpoint/` (the float HF checkpoint the
//!   next fine-tune starts from, so retraining never compounds quantization error);
//! - the champion's bundle files again at the root, so the browser's default bundle URL (a
//!   directory, or the repo's `resolve/main/`) always serves the champion;
//! - `README.md`, the model card (`card`), rewritten with every change of champion.
//!
//! Every change reads the registry and writes the new one through one [`store::Change`], so two
//! writers racing each other (a nightly promotion and a rollback) never lose an update: the
//! second is refused (Hub) or waits and reads the first one's result (directory).

pub mod card;
pub mod store;

use hub::AddFile;
use shared::bundle::{Manifest, MANIFEST_FILE, MODEL_FILE};
pub use shared::model_store::{
    CardSettings, ChampionChange, ChangeKind, Registry, VersionEntry, REGISTRY_FILE, REGISTRY_FORMAT_VERSION,
};
use std::path::{Path, PathBuf};
pub use store::{open_store, Change, ModelStore, StoreError};

/// The float checkpoint's files kept beside a version's bundle.
pub const CHECKPOINT_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{location}/registry.json is invalid: {detail}")]
    Invalid { location: String, detail: String },
    #[error("{}: {detail}", path.display())]
    Bundle { path: PathBuf, detail: String },
    #[error("version {0:?} may only hold letters, digits, '.', '_' and '-'")]
    BadVersion(String),
    #[error("version {0} is already published with a different model; give the new bundle another version")]
    VersionTaken(String),
    #[error("version {version} is not in the registry at {location} (published: {known})")]
    UnknownVersion { version: String, location: String, known: String },
    #[error("the registry at {0} has no champion yet: publish a bundle first")]
    NoChampion(String),
    #[error("{location}: {path} is missing, though the registry lists it")]
    Missing { location: String, path: String },
    #[error(
        "the champion at {location} is {found}, not {expected} as when this run read it (a rollback or another publish came first): nothing was written"
    )]
    ChampionChanged { location: String, expected: String, found: String },
}

/// The registry as the store holds it, or an empty one when the store has none yet.
pub fn load(store: &dyn ModelStore) -> Result<Registry, RegistryError> {
    parse(store.location(), store.read(REGISTRY_FILE)?)
}

/// The registry as `change` sees it.
pub fn load_in(change: &dyn Change) -> Result<Registry, RegistryError> {
    parse(change.location(), change.read(REGISTRY_FILE)?)
}

fn parse(location: String, bytes: Option<Vec<u8>>) -> Result<Registry, RegistryError> {
    let Some(bytes) = bytes else {
        return Ok(Registry::new());
    };
    let invalid = |detail: String| RegistryError::Invalid { location: location.clone(), detail };
    let r: Registry = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if r.format_version != REGISTRY_FORMAT_VERSION {
        let found = match r.format_version {
            0 => "no format_version".to_string(),
            v => format!("format_version {v}"),
        };
        return Err(invalid(format!("{found} (this build reads {REGISTRY_FORMAT_VERSION})")));
    }
    if let Some(c) = &r.champion {
        if r.get(c).is_none() {
            return Err(invalid(format!("champion {c} is not among the versions")));
        }
    }
    Ok(r)
}

/// The registry's champion, or why there is none.
pub fn champion_entry<'r>(registry: &'r Registry, location: &str) -> Result<&'r VersionEntry, RegistryError> {
    registry.champion_entry().ok_or_else(|| RegistryError::NoChampion(location.to_string()))
}

fn registry_file(registry: &Registry) -> AddFile {
    AddFile { path: REGISTRY_FILE.into(), content: serde_json::to_vec_pretty(registry).expect("registry serializes") }
}

fn unknown_version(registry: &Registry, version: &str, location: String) -> RegistryError {
    let known: Vec<&str> = registry.versions.iter().map(|v| v.version.as_str()).collect();
    RegistryError::UnknownVersion { version: version.to_string(), location, known: known.join(", ") }
}

fn check_version(v: &str) -> Result<(), RegistryError> {
    let ok = !v.is_empty()
        && v != "."
        && v != ".."
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadVersion(v.to_string()))
    }
}

/// A bundle read from disk and checked against its manifest.
pub struct LocalBundle {
    pub manifest: Manifest,
    /// File name → bytes, the manifest included.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Reads a bundle directory, verifying every listed file's size and sha256.
pub fn read_bundle(dir: &Path) -> Result<LocalBundle, RegistryError> {
    let bad = |path: &Path, detail: String| RegistryError::Bundle { path: path.to_path_buf(), detail };
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| bad(&p, e.to_string()))
    };
    let manifest_bytes = read(MANIFEST_FILE)?;
    let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| bad(&dir.join(MANIFEST_FILE), e.to_string()))?;
    let mut files = Vec::new();
    for name in manifest.files.keys() {
        let bytes = read(name)?;
        manifest.verify(name, &bytes).map_err(|e| bad(&dir.join(name), e.to_string()))?;
        files.push((name.clone(), bytes));
    }
    files.push((MANIFEST_FILE.to_string(), manifest_bytes));
    Ok(LocalBundle { manifest, files })
}

/// The bundle's files at the store's root (manifest last: until it lands, a reader sees the old
/// manifest and refuses the new files by hash instead of mixing versions silently).
fn root_files(files: &[(String, Vec<u8>)]) -> Vec<AddFile> {
    let mut out: Vec<AddFile> = files
        .iter()
        .filter(|(n, _)| n != MANIFEST_FILE)
        .map(|(n, b)| AddFile { path: n.clone(), content: b.clone() })
        .collect();
    out.extend(
        files.iter().filter(|(n, _)| n == MANIFEST_FILE).map(|(n, b)| AddFile { path: n.clone(), content: b.clone() }),
    );
    out
}

/// Which champion a change expects to find: it is refused if the store moved on since the
/// caller looked (`nightly` judged its challenger against one champion; `first-champion` acts
/// only on a store without one).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Expect {
    #[default]
    Anything,
    NoChampion,
    Champion(String),
}

impl Expect {
    fn check(&self, registry: &Registry, location: &str) -> Result<(), RegistryError> {
        let found = registry.champion.as_deref();
        let (ok, expected) = match self {
            Expect::Anything => (true, String::new()),
            Expect::NoChampion => (found.is_none(), "none".to_string()),
            Expect::Champion(v) => (found == Some(v.as_str()), v.clone()),
        };
        if ok {
            return Ok(());
        }
        Err(RegistryError::ChampionChanged {
            location: location.to_string(),
            expected,
            found: found.unwrap_or("none").to_string(),
        })
    }
}

/// What `publish` should do besides storing the bundle.
pub struct PublishOptions<'a> {
    /// The float checkpoint directory to keep beside the bundle.
    pub checkpoint: Option<&'a Path>,
    /// Make the new version champion (and serve it at the root).
    pub champion: bool,
    pub reason: String,
    /// RFC 3339 time of publication.
    pub at: String,
    /// Recorded in the history when the version becomes champion.
    pub kind: ChangeKind,
    /// The champion the store must still have.
    pub expect: Expect,
    /// Model card settings to record (what they set replaces the stored ones).
    pub card: CardSettings,
}

impl<'a> PublishOptions<'a> {
    /// Champion, no checkpoint, whatever the store holds.
    pub fn new(reason: impl Into<String>, at: impl Into<String>) -> Self {
        PublishOptions {
            checkpoint: None,
            champion: true,
            reason: reason.into(),
            at: at.into(),
            kind: ChangeKind::default(),
            expect: Expect::Anything,
            card: CardSettings::default(),
        }
    }
}

/// The model card file for `registry`, as the store `change` names it.
fn card_file(registry: &Registry, change: &dyn Change) -> AddFile {
    let repo = change.location().strip_prefix("hub:").and_then(|id| id.parse().ok());
    AddFile { path: card::CARD_FILE.into(), content: card::model_card(registry, repo.as_ref()).into_bytes() }
}

/// Publishes a bundle directory into the store and updates `registry.json` and the model card
/// in the same change. Publishing the same version with the same model again is a no-op apart
/// from `champion`.
pub fn publish(store: &dyn ModelStore, bundle_dir: &Path, opts: &PublishOptions) -> Result<Registry, RegistryError> {
    let bundle = read_bundle(bundle_dir)?;
    let m = &bundle.manifest;
    check_version(&m.version)?;
    let change = store.begin()?;
    let mut registry = load_in(&*change)?;
    opts.expect.check(&registry, &change.location())?;
    registry.card = registry.card.updated(&opts.card);
    let model_sha = m.files[MODEL_FILE].sha256.clone();
    let vpath = format!("versions/{}", m.version);
    let mut files = Vec::new();
    match registry.get(&m.version) {
        Some(e) if e.model_sha256 != model_sha => return Err(RegistryError::VersionTaken(m.version.clone())),
        Some(_) => {}
        None => {
            for (name, bytes) in &bundle.files {
                files.push(AddFile { path: format!("{vpath}/{name}"), content: bytes.clone() });
            }
            let checkpoint = match opts.checkpoint {
                Some(dir) => {
                    for name in CHECKPOINT_FILES {
                        let p = dir.join(name);
                        let content = std::fs::read(&p)
                            .map_err(|e| RegistryError::Bundle { path: p.clone(), detail: e.to_string() })?;
                        files.push(AddFile { path: format!("{vpath}/checkpoint/{name}"), content });
                    }
                    Some(format!("{vpath}/checkpoint"))
                }
                None => None,
            };
            registry.versions.push(VersionEntry {
                version: m.version.clone(),
                parent_version: m.parent_version.clone(),
                created_at: m.created_at.clone(),
                published_at: opts.at.clone(),
                source_repo: public_source(&m.source.repo_id),
                quantization: m.quantization.to_string(),
                size: m.files.values().map(|f| f.size).sum(),
                model_sha256: model_sha,
                path: vpath,
                checkpoint,
                metrics: m.metrics.clone(),
                lineage: m.lineage.clone(),
            });
        }
    }
    if opts.champion && registry.champion.as_deref() != Some(&m.version) {
        registry.history.push(ChampionChange {
            at: opts.at.clone(),
            from: registry.champion.clone(),
            to: m.version.clone(),
            reason: opts.reason.clone(),
            kind: opts.kind.clone(),
        });
        registry.champion = Some(m.version.clone());
        files.extend(root_files(&bundle.files));
    }
    files.push(card_file(&registry, &*change));
    files.push(registry_file(&registry));
    let summary = format!("Publish model version {}{}", m.version, if opts.champion { " as champion" } else { "" });
    change.commit(&files, &summary)?;
    Ok(registry)
}

/// A bundle's source as the registry may show it to everyone: a Hub repo id as it is, a local
/// path reduced to its last component (no machine's directory layout in a public file).
pub fn public_source(source: &str) -> String {
    if source.parse::<hub::RepoId>().is_ok() || !source.contains(['/', '\\']) {
        return source.to_string();
    }
    let name = Path::new(source).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("local:{name}")
}

/// Reads a published version's bundle files from the store, verified against its manifest.
/// Reads a file of a store (`None`: not there).
type ReadFile<'a> = &'a dyn Fn(&str) -> Result<Option<Vec<u8>>, StoreError>;

/// `read` reads from the store at `location`.
fn fetch_bundle_files(
    location: &str,
    read: ReadFile<'_>,
    entry: &VersionEntry,
) -> Result<Vec<(String, Vec<u8>)>, RegistryError> {
    let get = |name: &str| {
        let path = format!("{}/{name}", entry.path);
        read(&path)?.ok_or(RegistryError::Missing { location: location.to_string(), path })
    };
    let manifest_bytes = get(MANIFEST_FILE)?;
    let at = PathBuf::from(format!("{location}:{}/{MANIFEST_FILE}", entry.path));
    let manifest = Manifest::from_json(&manifest_bytes)
        .map_err(|e| RegistryError::Bundle { path: at.clone(), detail: e.to_string() })?;
    let mut files = Vec::new();
    for name in manifest.files.keys() {
        let bytes = get(name)?;
        manifest.verify(name, &bytes).map_err(|e| RegistryError::Bundle { path: at.clone(), detail: e.to_string() })?;
        files.push((name.clone(), bytes));
    }
    files.push((MANIFEST_FILE.to_string(), manifest_bytes));
    Ok(files)
}

/// Makes an earlier version champion again: its bundle goes back to the root and the registry
/// records the change.
pub fn rollback(store: &dyn ModelStore, version: &str, reason: &str, at: &str) -> Result<Registry, RegistryError> {
    let change = store.begin()?;
    let mut registry = load_in(&*change)?;
    let entry = registry.get(version).cloned().ok_or_else(|| unknown_version(&registry, version, store.location()))?;
    let mut files = root_files(&fetch_bundle_files(&change.location(), &|p| change.read(p), &entry)?);
    registry.history.push(ChampionChange {
        at: at.to_string(),
        from: registry.champion.clone(),
        to: version.to_string(),
        reason: reason.to_string(),
        kind: ChangeKind::Rollback,
    });
    registry.champion = Some(version.to_string());
    files.push(card_file(&registry, &*change));
    files.push(registry_file(&registry));
    change.commit(&files, &format!("Roll back to model version {version}"))?;
    Ok(registry)
}

/// Where a fetched version landed on disk.
pub struct FetchedVersion {
    pub bundle: PathBuf,
    pub checkpoint: Option<PathBuf>,
}

/// Copies a published version (bundle and, if any, checkpoint) into `dest`, verified.
pub fn fetch_version(
    store: &dyn ModelStore,
    entry: &VersionEntry,
    dest: &Path,
) -> Result<FetchedVersion, RegistryError> {
    let write = |path: PathBuf, bytes: &[u8]| -> Result<(), RegistryError> {
        let io = |source: std::io::Error| RegistryError::Store(StoreError::Io { path: path.clone(), source });
        std::fs::create_dir_all(path.parent().expect("file in a folder")).map_err(io)?;
        std::fs::write(&path, bytes).map_err(io)
    };
    let bundle = dest.join("bundle");
    for (name, bytes) in fetch_bundle_files(&store.location(), &|p| store.read(p), entry)? {
        write(bundle.join(name), &bytes)?;
    }
    let checkpoint = match &entry.checkpoint {
        Some(cp) => {
            let dir = dest.join("checkpoint");
            for name in CHECKPOINT_FILES {
                let path = format!("{cp}/{name}");
                let bytes = store.read(&path)?.ok_or(RegistryError::Missing { location: store.location(), path })?;
                write(dir.join(name), &bytes)?;
            }
            Some(dir)
        }
        None => None,
    };
    Ok(FetchedVersion { bundle, checkpoint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_sources_name_no_local_directory() {
        assert_eq!(
            public_source("cardiffnlp/twitter-roberta-base-sentiment-latest"),
            "cardiffnlp/twitter-roberta-base-sentiment-latest"
        );
        assert_eq!(public_source("/tmp/tmp.x1/ft-run/checkpoint"), "local:checkpoint");
        assert_eq!(public_source("local:checkpoint"), "local:checkpoint");
    }

    #[test]
    fn versions_are_safe_folder_names() {
        for bad in ["", "..", "a/b", "v 1", "v1\n"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        check_version("20261128-101500-abcdef01").unwrap();
    }
}
