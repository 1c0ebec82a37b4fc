//! `import --from owner/name` through the real CLI against the Hub stand-in: the checkpoint
//! lands in the HF cache as the official client lays it out (`refs/`, `blobs/<etag>`,
//! `snapshots/<commit>/` symlinks; `scripts/hub-contract.sh` has `huggingface_hub` read it
//! back), the bundle is the one a local import of the same files makes, the manifest names the
//! repo and the commit, and a second import reads the cache instead of the network.

mod common;

use common::fixture;
use hub::{AddFile, HubClient, HubConfig, Repo, TokenSource};
use hub_stand_in::{Faults, HubStandIn};
use shared::bundle::{Manifest, MANIFEST_FILE, MODEL_FILE};
use std::path::{Path, PathBuf};
use std::process::Command;

const TRAINER: &str = env!("CARGO_BIN_EXE_sentiment-trainer");

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("st-import-hub-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn import(endpoint: &str, hf_home: &Path, from: &str, out: &Path) -> (bool, String) {
    let out = Command::new(TRAINER)
        .args(["import", "--from", from, "--out", out.to_str().unwrap(), "--version", "v1", "--preprocess", "none"])
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", hf_home)
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN_PATH")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_a_hub_repo_through_the_hf_cache() {
    // model.safetensors (~500 kB) goes through LFS, the small files do not.
    let hub = HubStandIn::start("127.0.0.1:0".parse().unwrap(), Faults { lfs_threshold: 100_000, ..Faults::default() })
        .await
        .unwrap();
    hub.create_repo("models/acme/tiny");
    let endpoint = hub.endpoint();
    let src = fixture("tiny-roberta-bpe");
    let files: Vec<AddFile> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "bin"))
        .map(|p| AddFile { path: p.file_name().unwrap().to_str().unwrap().into(), content: std::fs::read(&p).unwrap() })
        .collect();
    let client = HubClient::new(HubConfig {
        token: Some("hf_test_token".into()),
        token_source: TokenSource::Env,
        ..HubConfig::new(&endpoint)
    });
    let commit = tokio::task::spawn_blocking(move || {
        client.upload_files(&Repo::model("acme/tiny".parse().unwrap()), &files, "tiny model").unwrap().commit_oid
    })
    .await
    .unwrap();

    let dir = tmp("run");
    let home = dir.join("hf-home");
    let e = endpoint.clone();
    let (h, d) = (home.clone(), dir.clone());
    let (ok, out) =
        tokio::task::spawn_blocking(move || import(&e, &h, "acme/tiny", &d.join("from-hub"))).await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains(&format!("from {endpoint}")), "says where it downloads from: {out}");
    let (ok, out) = import(&endpoint, &home, src.to_str().unwrap(), &dir.join("from-dir"));
    assert!(ok, "{out}");

    let (hub_m, dir_m) = (manifest(&dir.join("from-hub")), manifest(&dir.join("from-dir")));
    assert_eq!(hub_m.files[MODEL_FILE], dir_m.files[MODEL_FILE], "same weights as a local import");
    assert_eq!(hub_m.source.repo_id, "acme/tiny");
    assert_eq!(hub_m.source.revision.as_deref(), Some(commit.as_str()));

    // The official client's cache layout.
    let repo_dir = home.join("hub/models--acme--tiny");
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), commit);
    let weights = repo_dir.join("snapshots").join(&commit).join("model.safetensors");
    let sha = shared::sha256_hex(&std::fs::read(src.join("model.safetensors")).unwrap());
    assert_eq!(std::fs::read_link(&weights).unwrap(), Path::new("../../blobs").join(&sha), "LFS blob named by sha256");
    assert_eq!(std::fs::read(&weights).unwrap(), std::fs::read(src.join("model.safetensors")).unwrap());
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        assert!(repo_dir.join("snapshots").join(&commit).join(f).exists(), "{f}");
    }
    assert!(!repo_dir.join("snapshots").join(&commit).join("vocab.json").exists(), "only what import needs");

    // A second import takes the files from the cache: with every download refused, it still
    // works, because only the repo info is asked for.
    hub.set_faults(Faults { fail_downloads: true, ..Faults::default() });
    let (ok, out) = import(&endpoint, &home, "acme/tiny", &dir.join("again"));
    assert!(ok, "{out}");
    assert_eq!(manifest(&dir.join("again")).files[MODEL_FILE], hub_m.files[MODEL_FILE]);

    // Errors say what is wrong.
    hub.set_faults(Faults::default());
    let (ok, out) = import(&endpoint, &home, "acme/missing", &dir.join("missing"));
    assert!(!ok && out.contains("acme/missing: no such model repo"), "{out}");
    let (ok, out) = import(&endpoint, &home, "not a repo", &dir.join("bad"));
    assert!(!ok && out.contains("not a checkpoint directory, and not a Hub repo id"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
