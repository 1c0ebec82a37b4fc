//! `sentiment-trainer first-champion`: gives an empty model store its first champion — imports
//! the production checkpoint (bundle and float checkpoint), publishes both with `registry.json`
//! and the model card — and does nothing when the store already has a champion, so a deploy
//! can run it every time. On the Hub it creates the model repo (public: the page reads it
//! without a token) when it does not exist.

use crate::import::{import, ImportError, ImportOptions, Progress};
use crate::location::Location;
use crate::registry::{self, open_store, publish, CardSettings, Expect, PublishOptions, RegistryError, StoreError};
use hub::{HubClient, HubError, Repo};
use shared::{Clock, Manifest};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FirstChampionError {
    #[error(transparent)]
    Import(#[from] Box<ImportError>),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    HubConfig(#[from] hub::ConfigError),
    #[error("cannot create the model repo {repo} ({token}): {source}")]
    CreateRepo { repo: String, token: String, source: HubError },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

pub struct FirstChampionOptions {
    /// What to import: [`ImportOptions::from`], revision, quantization, load options; its `out`
    /// and `checkpoint_out` are set here.
    pub import: ImportOptions,
    /// The model store: a Hub model repo id or a local directory.
    pub to: String,
    /// Where the bundle and checkpoint are written before publishing (removed afterwards).
    pub work_dir: PathBuf,
    /// The model card's licence and datasets.
    pub card: CardSettings,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The store already had this champion; nothing was imported or written.
    AlreadyThere(String),
    /// This version was imported and published as champion.
    Published(Box<Manifest>),
}

/// Runs the command; `progress` sees the import's steps.
pub fn run(
    opts: FirstChampionOptions,
    clock: &Clock,
    progress: impl FnMut(Progress),
) -> Result<Outcome, FirstChampionError> {
    if let Location::Hub(id) = Location::parse(&opts.to) {
        let client = HubClient::from_env()?;
        client.create_repo(&Repo::model(id.clone()), false).map_err(|source| FirstChampionError::CreateRepo {
            repo: id.to_string(),
            token: client.token_source().to_string(),
            source,
        })?;
    }
    let store = open_store(&opts.to)?;
    if let Some(champion) = registry::load(&*store)?.champion {
        return Ok(Outcome::AlreadyThere(champion));
    }
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| FirstChampionError::Io { path, source }
    };
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    std::fs::create_dir_all(&opts.work_dir).map_err(io(&opts.work_dir))?;
    let (bundle, checkpoint) = (opts.work_dir.join("bundle"), opts.work_dir.join("checkpoint"));
    let import_opts = ImportOptions { out: bundle.clone(), checkpoint_out: Some(checkpoint.clone()), ..opts.import };
    let manifest = import(&import_opts, clock, progress).map_err(Box::new)?;
    let reason = match &manifest.source.revision {
        Some(rev) => format!("first champion, imported from {}@{rev}", manifest.source.repo_id),
        None => format!("first champion, imported from {}", manifest.source.repo_id),
    };
    let publish_opts = PublishOptions {
        checkpoint: Some(&checkpoint),
        expect: Expect::NoChampion,
        card: opts.card,
        ..PublishOptions::new(reason, clock.now_rfc3339())
    };
    let outcome = match publish(&*store, &bundle, &publish_opts) {
        Ok(_) => Outcome::Published(Box::new(manifest)),
        // Another run published first (its import finished sooner): that one stands.
        Err(RegistryError::ChampionChanged { found, .. }) => Outcome::AlreadyThere(found),
        Err(e @ RegistryError::Store(StoreError::Conflict { .. })) => match registry::load(&*store)?.champion {
            Some(champion) => Outcome::AlreadyThere(champion),
            None => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    std::fs::remove_dir_all(&opts.work_dir).map_err(io(&opts.work_dir))?;
    Ok(outcome)
}
