//! Writers racing on one model store lose no update (issue 31.6):
//! - on a Hub model repo (the stand-in, which refuses a stale `parentCommit` as the Hub does) a
//!   change made from a stale read is refused with a clear message and writes nothing; a nightly
//!   promotion judged against a champion that a rollback replaced meanwhile is refused too;
//!   rollbacks racing from two threads end with every success in the history and every loser told;
//! - on a directory, a change holds the store's lock: a second writer waits, then reads the
//!   first one's result.

use hub::{HubClient, HubConfig, Repo, TokenSource};
use hub_stand_in::{Faults, HubStandIn};
use sentiment_trainer::bundle_writer::{write_bundle, BundleInfo};
use sentiment_trainer::checkpoint::{Checkpoint, LoadOptions};
use sentiment_trainer::registry::store::{HubStore, LocalStore};
use sentiment_trainer::registry::{
    self, publish, rollback, Expect, ModelStore, PublishOptions, RegistryError, StoreError,
};
use shared::bundle::Source;
use shared::Preprocess;
use shared::Quantization;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("st-race-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Three versions of the tiny fixture model (f32: fast to write).
fn bundles(dir: &Path) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-roberta-bpe");
    let ck = Checkpoint::load(&root, &LoadOptions { preprocess: Preprocess::None, ..Default::default() }).unwrap();
    ["v1", "v2", "v3"]
        .iter()
        .zip([Quantization::F32, Quantization::F16, Quantization::Q8_0])
        .map(|(v, q)| {
            let out = dir.join(v);
            let info = BundleInfo {
                source: Source { repo_id: "tests/tiny".into(), revision: None },
                quantization: q,
                version: Some(v.to_string()),
                parent_version: None,
                created_at: "2026-12-07T00:00:00.000Z".into(),
                metrics: Default::default(),
                lineage: None,
                calibration: None,
            };
            write_bundle(&ck, info, &out, |_, _, _| {}).unwrap();
            out
        })
        .collect()
}

fn hub_store(endpoint: &str) -> HubStore {
    let client = HubClient::new(HubConfig {
        token: Some("hf_test".into()),
        token_source: TokenSource::Env,
        ..HubConfig::new(endpoint)
    });
    HubStore { client, repo: Repo::model("acme/sentiment".parse().unwrap()) }
}

fn publish_all(store: &dyn ModelStore, versions: &[PathBuf]) {
    for v in versions {
        publish(store, v, &PublishOptions::new("setup", "t0")).unwrap();
    }
}

/// Rollbacks from two threads at once; returns (successes, conflicts). Any other error fails.
fn race_rollbacks(stores: [Arc<dyn ModelStore + Send + Sync>; 2], rounds: usize) -> (usize, usize) {
    let handles: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(t, store)| {
            std::thread::spawn(move || {
                let (mut ok, mut lost) = (0, 0);
                for i in 0..rounds {
                    let to = ["v1", "v2", "v3"][(i + t) % 3];
                    match rollback(&*store, to, &format!("thread {t} round {i}"), "t") {
                        Ok(_) => ok += 1,
                        Err(RegistryError::Store(StoreError::Conflict { .. })) => lost += 1,
                        Err(e) => panic!("thread {t} round {i}: {e}"),
                    }
                }
                (ok, lost)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_hub_the_second_writer_is_refused_and_nothing_is_lost() {
    let hub = HubStandIn::start("127.0.0.1:0".parse().unwrap(), Faults::default()).await.unwrap();
    hub.create_repo("models/acme/sentiment");
    let endpoint = hub.endpoint();
    let dir = tmp("hub");
    tokio::task::spawn_blocking(move || {
        let versions = bundles(&dir);
        let store = hub_store(&endpoint);
        publish_all(&store, &versions);
        let before = registry::load(&store).unwrap();
        assert_eq!((before.champion.as_deref(), before.history.len()), (Some("v3"), 3));

        // A change made from what was there before a rollback committed is refused, whole.
        let stale = store.begin().unwrap();
        let seen = registry::load_in(&*stale).unwrap();
        assert_eq!(seen.champion.as_deref(), Some("v3"));
        rollback(&store, "v2", "v3 misbehaves", "t1").unwrap();
        let mut lost_update = seen.clone();
        lost_update.champion = Some("v1".into());
        let file = hub::AddFile { path: "registry.json".into(), content: serde_json::to_vec(&lost_update).unwrap() };
        let e = stale.commit(&[file], "stale").unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
        assert!(e.to_string().contains("nothing was written"), "{e}");
        let now = registry::load(&store).unwrap();
        assert_eq!((now.champion.as_deref(), now.history.len()), (Some("v2"), 4), "the rollback stands");

        // A nightly run judged its challenger against v3; the rollback to v2 wins, the run says so.
        let opts = PublishOptions { expect: Expect::Champion("v3".into()), ..PublishOptions::new("gate passed", "t2") };
        let e = publish(&store, &versions[0], &opts).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, RegistryError::ChampionChanged { .. }), "{msg}");
        assert!(msg.contains("is v2, not v3") && msg.contains("nothing was written"), "{msg}");
        assert_eq!(registry::load(&store).unwrap(), now);

        // Two operators rolling back at once, each read-modify-write racing the other's.
        let stores: [Arc<dyn ModelStore + Send + Sync>; 2] =
            [Arc::new(hub_store(&endpoint)), Arc::new(hub_store(&endpoint))];
        let (ok, lost) = race_rollbacks(stores, 12);
        let end = registry::load(&store).unwrap();
        println!("hub race: {ok} rollbacks applied, {lost} refused");
        assert_eq!(ok + lost, 24);
        assert_eq!(end.history.len(), now.history.len() + ok, "every applied rollback is in the history, once");
        // The root serves the champion the registry names.
        let root: serde_json::Value = serde_json::from_slice(&store.read("manifest.json").unwrap().unwrap()).unwrap();
        assert_eq!(root["version"].as_str(), end.champion.as_deref());
    })
    .await
    .unwrap();
}

#[test]
fn in_a_directory_a_change_holds_the_lock_and_the_next_writer_reads_its_result() {
    let dir = tmp("local");
    let versions = bundles(&dir);
    let root = dir.join("store");
    let store = LocalStore { root: root.clone() };
    publish_all(&store, &versions);

    // While one change is open, a rollback from another thread waits for it.
    let change = store.begin().unwrap();
    let waiter = {
        let root = root.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let r = rollback(&LocalStore { root }, "v1", "waited", "t").unwrap();
            (t0.elapsed(), r)
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    drop(change);
    let (waited, r) = waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(350), "the rollback did not wait for the lock ({waited:?})");
    assert_eq!(r.champion.as_deref(), Some("v1"));

    let before = registry::load(&store).unwrap().history.len();
    let stores: [Arc<dyn ModelStore + Send + Sync>; 2] =
        [Arc::new(LocalStore { root: root.clone() }), Arc::new(LocalStore { root: root.clone() })];
    let (ok, lost) = race_rollbacks(stores, 12);
    assert_eq!((ok, lost), (24, 0), "a directory serializes writers");
    assert_eq!(registry::load(&store).unwrap().history.len(), before + 24);
    std::fs::remove_dir_all(dir).unwrap();
}
