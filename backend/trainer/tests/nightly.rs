//! The retraining loop on the tiny RoBERTa and the synthetic posts in
//! `fixtures/synthetic-sentiment` (base domain: ordinary words; shifted domain: slang):
//! - `publish` / `rollback` keep `registry.json`, `versions/` and the served root consistent, on a
//!   local store and on a Hub model repo (the fake Hub, through the real CLI);
//! - `nightly` retrains on shifted feedback and promotes through the gate;
//! - acceptance 5: with 30 % of the feedback's labels flipped by one client, no promotion loses
//!   more than 0.5 pp on the gold set — checked by evaluating what the store serves afterwards,
//!   independently of the gate's own figures; and a client flipping everything is rejected.

mod common;

use hub::{AddFile, HubClient, HubConfig, Repo, TokenSource};
use hub_stand_in::{Faults, HubStandIn};
use model::Quantization;
use sentiment_trainer::bundle_writer::{write_bundle, BundleInfo};
use sentiment_trainer::checkpoint::{Checkpoint, LoadOptions};
use sentiment_trainer::data::load_examples;
use sentiment_trainer::nightly::config::NightlyConfig;
use sentiment_trainer::nightly::feedback_data::holdout_hash;
use sentiment_trainer::nightly::{run, NightlyOptions, NightlyReport, Outcome};
use sentiment_trainer::predict::Predictor;
use sentiment_trainer::registry::store::LocalStore;
use sentiment_trainer::registry::{self, publish, rollback, ChangeKind, PublishOptions, Registry, RegistryError};
use sentiment_trainer::train::{train, TrainOptions};
use shared::bundle::{Source, MANIFEST_FILE, MODEL_FILE};
use shared::model_store::{GuardCheck, IndexEntry, MonitorDecision, Report, REGISTRY_FILE, REPORT_INDEX_FILE};
use shared::Preprocess;
use std::path::{Path, PathBuf};
use std::process::Command;

const TRAINER: &str = env!("CARGO_BIN_EXE_sentiment-trainer");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn data(name: &str) -> PathBuf {
    root().join("fixtures/synthetic-sentiment").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("st-nightly-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn labels() -> Vec<String> {
    ["negative", "neutral", "positive"].map(String::from).to_vec()
}

/// The champion: the tiny RoBERTa fine-tuned on the base domain until it knows it (gold macro
/// recall 99 %), as a q8_0 bundle `version`.
fn champion(dir: &Path, version: &str) -> (PathBuf, PathBuf) {
    let ck = dir.join("base-checkpoint");
    let mut o = TrainOptions::new(root().join("fixtures/tiny-roberta-bpe"), vec![data("base-train.jsonl")], ck.clone());
    o.epochs = 10;
    o.lr = 2e-3;
    o.batch_size = 16;
    o.preprocess = Preprocess::None;
    train(&o, |_| {}).unwrap();
    (bundle(&ck, &dir.join(version), version, Quantization::Q8_0), ck)
}

fn bundle(ck: &Path, out: &Path, version: &str, quantization: Quantization) -> PathBuf {
    bundle_of(ck, out, version, quantization, None)
}

fn bundle_of(ck: &Path, out: &Path, version: &str, quantization: Quantization, parent: Option<&str>) -> PathBuf {
    let ck = Checkpoint::load(ck, &LoadOptions { preprocess: Preprocess::None, ..Default::default() }).unwrap();
    let info = BundleInfo {
        source: Source { repo_id: "tests/tiny".into(), revision: None },
        quantization,
        version: Some(version.into()),
        parent_version: parent.map(String::from),
        created_at: "2026-11-28T00:00:00.000Z".into(),
        metrics: Default::default(),
        lineage: None,
        calibration: None,
    };
    write_bundle(&ck, info, out, |_, _, _| {}).unwrap();
    out.to_path_buf()
}

fn gold_macro_recall(bundle: &Path) -> f64 {
    let gold = load_examples(&data("gold.jsonl"), &labels()).unwrap();
    Predictor::open_bundle(bundle).unwrap().evaluate(&gold, 64, |_| {}).unwrap().macro_recall
}

/// Feedback records for `texts` (text, true label) as the server stores them, with the model's
/// real predictions; `flip(i)` says whether record `i`'s label is rotated by a lying client.
fn feedback(model: &Path, texts: &[(String, String)], version: &str, flip: impl Fn(usize) -> bool) -> String {
    feedback_at(model, texts, version, flip, "2026-11-28T01:00:00.000Z", 1)
}

/// `feedback` received at `at`, with record ids counting from `first_id`.
fn feedback_at(
    model: &Path,
    texts: &[(String, String)],
    version: &str,
    flip: impl Fn(usize) -> bool,
    at: &str,
    first_id: usize,
) -> String {
    let p = Predictor::open_bundle(model).unwrap();
    let preds = p.predict_many(&texts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), 64, |_| {}).unwrap();
    let l = labels();
    let mut out = String::new();
    for (i, ((text, label), pred)) in texts.iter().zip(preds).enumerate() {
        let label =
            if flip(i) { l[(l.iter().position(|x| x == label).unwrap() + 1) % 3].clone() } else { label.clone() };
        let scores: std::collections::BTreeMap<String, f64> =
            pred.scores.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
        out.push_str(
            &serde_json::json!({
                "id": format!("00000000-0000-4000-8000-{:012}", i + first_id), "text": text, "predicted": pred.label,
                "scores": scores, "label": label, "model_version": version,
                "received_at": at,
            })
            .to_string(),
        );
        out.push('\n');
    }
    out
}

fn texts(name: &str, skip: usize, n: usize) -> Vec<(String, String)> {
    std::fs::read_to_string(data(name))
        .unwrap()
        .lines()
        .skip(skip)
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["text"].as_str().unwrap().to_string(), v["label"].as_str().unwrap().to_string())
        })
        .collect()
}

fn config(dir: &Path, registry: &str, feedback: &str) -> PathBuf {
    let toml = format!(
        r#"registry = "{registry}"
feedback = "{feedback}"
gold_test = "{gold}"
guard_set = "{guard}"
replay_data = "{replay}"
[monitor]
min_samples = 100
baseline = 0.8
[gate]
# Small nights: the significance test (min_holdout_z) still applies.
min_holdout = 30
[train]
epochs = 3
lr = 2e-3
batch_size = 16
"#,
        gold = data("gold.jsonl").display(),
        guard = data("guard.jsonl").display(),
        replay = data("base-train.jsonl").display()
    );
    let p = dir.join("nightly.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The page's monitor view reads the model store with `shared::model_store`'s types: they take
/// in every field of the files `run` wrote (read and written again, each file is the same JSON),
/// and what they read is what the run decided.
fn the_page_reads_what_the_run_wrote(store: &Path, run: &NightlyReport) {
    use serde_json::{from_slice, to_value, Value};
    let bytes = |path: &str| std::fs::read(store.join(path)).unwrap();
    // Parsed by the same parser both ways, so the floats compare exactly.
    let written = |path: &str| from_slice::<Value>(&bytes(path)).unwrap();
    let registry: Registry = from_slice(&bytes(REGISTRY_FILE)).unwrap();
    assert_eq!(to_value(&registry).unwrap(), written(REGISTRY_FILE));
    let index: Vec<IndexEntry> = from_slice(&bytes(REPORT_INDEX_FILE)).unwrap();
    assert_eq!(to_value(&index).unwrap(), written(REPORT_INDEX_FILE));
    let entry = &index[0];
    assert_eq!(Some(entry.file.as_str()), run.store_report.as_deref(), "{:?}", run.store_report_error);
    assert_eq!(
        (&entry.started_at, &entry.outcome, &entry.reason, &entry.champion, &entry.new_champion),
        (&run.started_at, &run.outcome, &run.reason, &run.champion, &run.new_champion)
    );

    let shown: Report = from_slice(&bytes(&entry.file)).unwrap();
    let report = written(&entry.file);
    assert_eq!(to_value(&shown.monitor).unwrap(), report["monitor"]);
    assert_eq!(to_value(&shown.promotion_guard).unwrap(), report["promotion_guard"]);
    assert_eq!(to_value(&shown.gate).unwrap(), report["gate"]);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    let decision = |m: &MonitorDecision| (m.n, m.decision.clone(), m.model_version.clone(), m.psi_alert);
    assert_eq!(shown.monitor.as_ref().map(decision), run.monitor.as_ref().map(decision));
    if let (Some(a), Some(b)) = (&shown.monitor, &run.monitor) {
        assert!(close(a.baseline, b.baseline) && close(a.tolerance, b.tolerance), "{a:?}");
    }
    let guard = |g: &GuardCheck| (g.decision.clone(), g.champion_agreement.map(|a| a.n), g.reason.clone());
    assert_eq!(shown.promotion_guard.as_ref().map(guard), run.promotion_guard.as_ref().map(guard));
    assert_eq!(shown.gate.as_ref().map(|g| g.promote), run.gate.as_ref().map(|g| g.promote));
    let shown_gold = shown.evaluations.as_ref().and_then(|e| e.challenger_gold);
    let run_gold = run.evaluations.as_ref().map(|e| &e.challenger_gold);
    assert_eq!(shown_gold.map(|f| f.n), run_gold.map(|r| r.n));
    if let (Some(a), Some(b)) = (shown_gold, run_gold) {
        assert!(close(a.macro_recall.unwrap(), b.macro_recall), "{a:?}");
    }
    assert_eq!(shown.config.gate.gold_metric, report["config"]["gate"]["gold_metric"]);
}

#[test]
fn publish_and_rollback_keep_the_registry_and_the_served_root_consistent() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("local");
    let (v1, ck) = champion(&dir, "v1");
    let v2 = bundle(&ck, &dir.join("v2"), "v2", Quantization::F16);
    let store = LocalStore { root: dir.join("store") };
    let opts = |champion| PublishOptions { checkpoint: Some(&ck), champion, ..PublishOptions::new("test", "t") };

    publish(&store, &v1, &opts(true)).unwrap();
    let r = publish(&store, &v2, &opts(false)).unwrap();
    assert_eq!(r.champion.as_deref(), Some("v1"), "--no-champion leaves the champion alone");
    let root_version = || read_json(&store.root.join(MANIFEST_FILE))["version"].as_str().unwrap().to_string();
    assert_eq!(root_version(), "v1");
    let r = publish(&store, &v2, &opts(true)).unwrap();
    assert_eq!((r.champion.as_deref(), r.versions.len(), r.history.len()), (Some("v2"), 2, 2));
    assert_eq!(root_version(), "v2");
    assert_eq!(std::fs::read(store.root.join(MODEL_FILE)).unwrap(), std::fs::read(v2.join(MODEL_FILE)).unwrap());
    assert!(store.root.join("versions/v1/checkpoint/model.safetensors").exists());

    // Another model under a taken version is refused; nothing changes.
    let clash = bundle(&ck, &dir.join("clash"), "v1", Quantization::F32);
    assert!(matches!(publish(&store, &clash, &opts(true)), Err(RegistryError::VersionTaken(_))));
    assert_eq!(registry::load(&store).unwrap(), r);

    let r = rollback(&store, "v1", "v2 misbehaves", "t2").unwrap();
    assert_eq!(r.champion.as_deref(), Some("v1"));
    assert_eq!(r.history.last().unwrap().reason, "v2 misbehaves");
    assert_eq!(root_version(), "v1");
    for f in [MODEL_FILE, "tokenizer.json", MANIFEST_FILE] {
        assert_eq!(std::fs::read(store.root.join(f)).unwrap(), std::fs::read(v1.join(f)).unwrap(), "{f}");
    }
    let e = rollback(&store, "v9", "", "t").unwrap_err().to_string();
    assert!(e.contains("v9") && e.contains("v1, v2"), "{e}");

    // A damaged stored version is refused by hash, and the served root stays as it was.
    std::fs::write(store.root.join("versions/v2/model.gguf"), b"not a model").unwrap();
    let e = rollback(&store, "v2", "", "t").unwrap_err().to_string();
    assert!(e.contains("model.gguf"), "{e}");
    assert_eq!(root_version(), "v1");
    assert_eq!(registry::load(&store).unwrap().champion.as_deref(), Some("v1"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn one_client_flipping_labels_never_costs_gold_accuracy() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("flip");
    let (v1, ck) = champion(&dir, "v1");
    let gold_v1 = gold_macro_recall(&v1);
    let store_dir = dir.join("store");
    let store = LocalStore { root: store_dir.clone() };
    publish(&store, &v1, &PublishOptions { checkpoint: Some(&ck), ..PublishOptions::new("t", "t") }).unwrap();

    // 30 % of the records (one client's) have rotated labels: on shifted posts and on posts like
    // the gold set's, so learning them would hurt exactly where the gold set looks.
    let mut posts = texts("shifted.jsonl", 0, 280);
    posts.extend(texts("base-train.jsonl", 0, 120));
    let fb = dir.join("feedback-30");
    std::fs::create_dir_all(&fb).unwrap();
    std::fs::write(fb.join("a.jsonl"), feedback(&v1, &posts, "v1", |i| i % 10 < 3)).unwrap();
    let mut cfg = NightlyConfig::from_file(&config(&dir, store_dir.to_str().unwrap(), fb.to_str().unwrap())).unwrap();
    let report = run(&cfg, &NightlyOptions { force_retrain: true }, |_| {});
    assert!(matches!(report.outcome, Outcome::Promoted | Outcome::Rejected), "{}", report.reason);
    the_page_reads_what_the_run_wrote(&store_dir, &report);
    let served = gold_macro_recall(&store_dir);
    assert!(served >= gold_v1 - 0.005, "served gold macro recall {served} vs champion's {gold_v1}: {}", report.reason);
    println!("30 % flipped: {:?}: {}", report.outcome, report.reason);

    // A client flipping every label on gold-like posts: the posts that are the gold or guard
    // set's (after normalisation; the synthetic domain's templates make most of them so) never
    // reach training, and what is left cannot win on the holdout: rejected, nothing changes.
    let champion_now = registry::load(&store).unwrap().champion.unwrap();
    let root_manifest = std::fs::read(store_dir.join(MANIFEST_FILE)).unwrap();
    let fb = dir.join("feedback-all");
    std::fs::create_dir_all(&fb).unwrap();
    let posts = texts("base-train.jsonl", 200, 400);
    std::fs::write(fb.join("a.jsonl"), feedback(&store_dir, &posts, &champion_now, |_| true)).unwrap();
    cfg.feedback = fb.display().to_string();
    let report = run(&cfg, &NightlyOptions::default(), |_| {});
    assert_eq!(report.monitor.as_ref().unwrap().decision, "retrain", "{}", report.reason);
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    let data = report.data.as_ref().unwrap();
    assert!(data.gold_like_removed * 2 > data.train_examples, "{data:?}");
    assert!(!report.gate.as_ref().unwrap().promote, "{}", report.reason);
    the_page_reads_what_the_run_wrote(&store_dir, &report);
    assert_eq!(registry::load(&store).unwrap().champion.unwrap(), champion_now);
    assert_eq!(std::fs::read(store_dir.join(MANIFEST_FILE)).unwrap(), root_manifest);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `jsonl` (one record a line) with `client(i)` as record `i`'s client key.
fn with_clients(jsonl: &str, client: impl Fn(usize) -> String) -> String {
    let mut out = String::new();
    for (i, line) in jsonl.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["client"] = client(i).into();
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// Issue 32.7: one client with fresh ids flipping labels on 30 % of a night's feedback (shifted
/// posts the champion reads wrong, and gold-like posts) never gets a challenger promoted; an
/// honest night with the same volume, from many clients, does. The other 70 % of both nights
/// are the same honest confirmations (posts the champion reads right), so only the 30 % can
/// make a challenger win: in the lying night, only lies. The same lying night without client
/// keys (each record its own client, the split by record id: the loop before the defences) is
/// promoted, so the test fails if the defences stop working.
#[test]
fn one_client_with_fresh_ids_cannot_get_its_lies_promoted_and_an_honest_night_can() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("clients");
    let (v1, ck) = champion(&dir, "v1");
    // Distinct posts, so that every record is one vote on its own text.
    let mut seen = std::collections::HashSet::new();
    let shifted: Vec<(String, String)> =
        texts("shifted.jsonl", 0, 3000).into_iter().filter(|t| seen.insert(t.0.clone())).collect();
    let p = Predictor::open_bundle(&v1).unwrap();
    let preds = p.predict_many(&shifted.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), 64, |_| {}).unwrap();
    let (right, wrong): (Vec<_>, Vec<_>) = shifted.into_iter().zip(preds).partition(|(t, p)| t.1 == p.label);
    // The contested posts: one narrow family (complaints calling the thing "dead" or "trash",
    // which the champion reads as praise), so that what is said about them, true or not, is
    // consistent enough for the tiny model to learn in one night; the confirmations leave the
    // family to them.
    let family = |t: &str| ["dead", "trash"].iter().any(|w| t.contains(w));
    let confirmations: Vec<(String, String)> =
        right.into_iter().map(|x| x.0).filter(|t| !family(&t.0)).take(420).collect();
    let l = labels();
    // The liar's label on a post: one that neither the truth nor the champion gives it ("neutral"
    // on the family), so a model that learns the lie is the only one "right" on it, and the
    // liar's records in a holdout vouch for it. On the gold-like posts: the next label.
    let lie = |truth: &str, read: &str| {
        let i = l.iter().position(|x| x == truth).unwrap();
        (1..3).map(|k| l[(i + k) % 3].clone()).find(|x| x != read).unwrap()
    };
    let contested: Vec<(String, String, String)> = wrong
        .into_iter()
        .filter(|x| family(&x.0 .0))
        .take(120)
        .map(|(t, p)| {
            let lied = lie(&t.1, &p.label);
            (t.0, t.1, lied)
        })
        .chain(texts("base-train.jsonl", 0, 60).into_iter().map(|t| {
            let lied = lie(&t.1, &t.1);
            (t.0, t.1, lied)
        }))
        .collect();
    assert_eq!((confirmations.len(), contested.len()), (420, 180));
    let told = |lies: bool| -> Vec<(String, String)> {
        contested.iter().map(|(t, truth, lied)| (t.clone(), if lies { lied } else { truth }.clone())).collect()
    };

    // 60 honest clients; the liar's key lands on the training side (the side its lies would
    // teach; on the holdout side they could only judge a model that never saw them). With
    // `keys` false the records carry no client key, as stored before the server wrote one.
    let honest = |i: usize| format!("{:016x}", 0x1000 + i % 60);
    let liar = (0..).map(|n| format!("{:016x}", 0xdead_0000_u64 + n)).find(|k| holdout_hash(k) > 0.5).unwrap();
    let night = |name: &str, lies: bool, keys: bool, capped: bool| {
        let store_dir = dir.join(format!("store-{name}"));
        let store = LocalStore { root: store_dir.clone() };
        publish(&store, &v1, &PublishOptions { checkpoint: Some(&ck), ..PublishOptions::new("t", "t") }).unwrap();
        let fb = dir.join(format!("feedback-{name}"));
        std::fs::create_dir_all(&fb).unwrap();
        let base = feedback_at(&v1, &confirmations, "v1", |_| false, "2026-11-28T01:00:00.000Z", 1);
        let extra = feedback_at(&v1, &told(lies), "v1", |_| false, "2026-11-28T02:00:00.000Z", 5001);
        let records = match (keys, lies) {
            (false, _) => base + &extra,
            (true, true) => with_clients(&base, honest) + &with_clients(&extra, |_| liar.clone()),
            (true, false) => with_clients(&base, honest) + &with_clients(&extra, |i| honest(i + 7)),
        };
        std::fs::write(fb.join("a.jsonl"), records).unwrap();
        // The forgetting guards loosened (1 pp on the guard set when choosing, 2 pp on gold at
        // the gate: the challenger that learns the family here loses 0.8 pp guard and up to
        // 1.25 pp gold) and 6 epochs, so that a challenger learns the night's 30 % whoever sent
        // it: only the client defences can stop the lying night. With the default 0.25 pp guard
        // budget the night picks a blend too close to the champion to learn it, and even the
        // lying night without keys is rejected (+0.79 pp, z 1.00); the forgetting guards have
        // their own test, `one_client_flipping_labels_never_costs_gold_accuracy`.
        let path = config(&dir, store_dir.to_str().unwrap(), fb.to_str().unwrap());
        let toml = std::fs::read_to_string(&path)
            .unwrap()
            .replace("[gate]\n", "[gate]\nmax_gold_loss = 0.02\n")
            .replace("epochs = 3", "epochs = 6")
            + "[select]\nmax_guard_loss = 0.01\n"
            + if capped { "" } else { "[clients]\ncap_share = 1.0\n" };
        std::fs::write(&path, toml).unwrap();
        let cfg = NightlyConfig::from_file(&path).unwrap();
        let report = run(&cfg, &NightlyOptions { force_retrain: true }, |_| {});
        println!(
            "{name} night: {:?}: {}\n  data: {}",
            report.outcome,
            report.reason,
            serde_json::to_string(&report.data).unwrap()
        );
        (report, registry::load(&store).unwrap().champion.unwrap())
    };

    // The attack, without the defences: the liar's records spread over holdout, validation and
    // training by id, its lies are learnt and vouch for the challenger that learnt them.
    let (open, champion_after) = night("lying-without-keys", true, false, true);
    assert_eq!(open.outcome, Outcome::Promoted, "{}", open.reason);
    assert_ne!(champion_after, "v1");

    // Each defence alone stops it: with the cap lifted, the split by client keeps the liar's
    // records off the holdout, so nothing vouches for its lies.
    let (uncapped, champion_after) = night("lying-uncapped", true, true, false);
    assert_ne!(uncapped.outcome, Outcome::Promoted, "{}", uncapped.reason);
    assert_eq!((champion_after.as_str(), uncapped.data.as_ref().unwrap().records_capped), ("v1", 0));

    let (lying, champion_after) = night("lying", true, true, true);
    assert_ne!(lying.outcome, Outcome::Promoted, "{}", lying.reason);
    assert_eq!(champion_after, "v1");
    // The report shows the cap: max(20, 5 % of the votes) = 30 of the liar's votes kept (its
    // 180 records, less the few on the same gold-like text twice, which count once).
    let d = lying.data.as_ref().unwrap();
    let shown = serde_json::to_string(d).unwrap();
    let liar_votes = 180 - d.repeated_votes;
    assert_eq!((d.records, d.clients, d.client_cap), (600, 61, 30), "{shown}");
    assert_eq!((d.clients_capped, d.records_capped), (1, liar_votes - 30), "{shown}");
    assert!((d.largest_client_share - liar_votes as f64 / (600 - d.repeated_votes) as f64).abs() < 1e-9, "{shown}");

    let (honest_night, champion_after) = night("honest", false, true, true);
    assert_eq!(honest_night.outcome, Outcome::Promoted, "{}", honest_night.reason);
    assert_ne!(champion_after, "v1");
    let d = honest_night.data.as_ref().unwrap();
    let shown = serde_json::to_string(d).unwrap();
    assert_eq!((d.records, d.clients, d.clients_capped, d.records_capped), (600, 60, 0, 0), "{shown}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Issue 33.3: a promoted champion that users agree with less than they would with its parent,
/// on the feedback received since its promotion, is rolled back; the next night does not
/// promote a challenger trained on the same feedback.
#[test]
fn a_worse_promoted_champion_is_rolled_back_and_not_promoted_again() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("guard");
    let (v1, ck) = champion(&dir, "v1");
    // v2: the same tiny RoBERTa after a single epoch of the base domain, published as if the
    // loop had promoted it over v1: much worse on base-domain posts.
    let weak = dir.join("weak-checkpoint");
    let mut o =
        TrainOptions::new(root().join("fixtures/tiny-roberta-bpe"), vec![data("base-train.jsonl")], weak.clone());
    o.lr = 2e-3;
    o.batch_size = 16;
    o.preprocess = Preprocess::None;
    train(&o, |_| {}).unwrap();
    let v2 = bundle_of(&weak, &dir.join("v2"), "v2", Quantization::Q8_0, Some("v1"));
    let store_dir = dir.join("store");
    let store = LocalStore { root: store_dir.clone() };
    for (bundle, checkpoint, at, kind) in [
        (&v1, &ck, "2026-11-27T00:00:00.000Z", ChangeKind::Published),
        (&v2, &weak, "2026-11-28T00:00:00.000Z", ChangeKind::Promoted),
    ] {
        let opts = PublishOptions { checkpoint: Some(checkpoint), kind, ..PublishOptions::new("t", at) };
        publish(&store, bundle, &opts).unwrap();
    }

    // Before the promotion, v1 served shifted posts it reads poorly (what made the loop retrain);
    // after it, v2 served base-domain posts and users disagreed with it far more than with v1.
    let fb = dir.join("feedback");
    std::fs::create_dir_all(&fb).unwrap();
    let before = feedback_at(&v1, &texts("shifted.jsonl", 0, 300), "v1", |_| false, "2026-11-27T12:00:00.000Z", 1);
    let after = feedback_at(&v2, &texts("guard.jsonl", 0, 400), "v2", |_| false, "2026-11-28T01:00:00.000Z", 1001);
    std::fs::write(fb.join("a.jsonl"), before + &after).unwrap();
    let cfg = NightlyConfig::from_file(&config(&dir, store_dir.to_str().unwrap(), fb.to_str().unwrap())).unwrap();

    let report = run(&cfg, &NightlyOptions::default(), |_| {});
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.reason);
    let guard = report.promotion_guard.as_ref().unwrap();
    let (c, p) = (guard.champion_agreement.unwrap(), guard.parent_agreement.unwrap());
    assert!(c.n == 400 && c.ci_high < p.ci_low, "{}", guard.reason);
    the_page_reads_what_the_run_wrote(&store_dir, &report);
    let registry = registry::load(&store).unwrap();
    assert_eq!(registry.champion.as_deref(), Some("v1"));
    let last = registry.history.last().unwrap();
    assert_eq!(
        (&last.kind, last.from.as_deref(), last.reason.as_str()),
        (&ChangeKind::Rollback, Some("v2"), report.reason.as_str())
    );
    assert_eq!(read_json(&store_dir.join(MANIFEST_FILE))["version"], "v1");

    // The next night: v1's own feedback still says retrain, but nothing arrived since the
    // rollback, so nothing is trained or promoted, even when forced; the report says why.
    for force_retrain in [false, true] {
        let report = run(&cfg, &NightlyOptions { force_retrain }, |_| {});
        assert_eq!(report.monitor.as_ref().unwrap().decision, "retrain", "{}", report.reason);
        assert_eq!(report.outcome, Outcome::Hold, "{}", report.reason);
        assert!(
            report.reason.contains("v2 was rolled back") && report.reason.contains("new feedback"),
            "{}",
            report.reason
        );
        assert!(report.training.is_none());
        the_page_reads_what_the_run_wrote(&store_dir, &report);
    }
    assert_eq!(registry::load(&store).unwrap(), registry);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A q4k champion's challenger is quantized as q4k too, calibrated with GPTQ on its own training
/// data, and its manifest says so.
#[test]
fn a_q4k_challenger_is_calibrated_on_its_training_data() {
    common::kernels_as_the_trainer_runs_them();
    let dir = tmp("q4k");
    let (_, ck) = champion(&dir, "v0");
    let v1 = bundle(&ck, &dir.join("v1"), "v1", Quantization::Q4K);
    let store_dir = dir.join("store");
    let store = LocalStore { root: store_dir.clone() };
    publish(&store, &v1, &PublishOptions { checkpoint: Some(&ck), ..PublishOptions::new("t", "t") }).unwrap();
    let fb = dir.join("feedback");
    std::fs::create_dir_all(&fb).unwrap();
    std::fs::write(fb.join("a.jsonl"), feedback(&v1, &texts("shifted.jsonl", 0, 200), "v1", |_| false)).unwrap();
    let mut cfg = NightlyConfig::from_file(&config(&dir, store_dir.to_str().unwrap(), fb.to_str().unwrap())).unwrap();
    cfg.work_dir = dir.join("work");
    let report = run(&cfg, &NightlyOptions { force_retrain: true }, |_| {});
    assert!(matches!(report.outcome, Outcome::Promoted | Outcome::Rejected), "{}", report.reason);
    let run_dir = std::fs::read_dir(&cfg.work_dir).unwrap().next().unwrap().unwrap().path();
    let manifest = read_json(&run_dir.join("challenger").join(MANIFEST_FILE));
    assert_eq!(manifest["quantization"], "q4k");
    assert_eq!(manifest["calibration"]["method"], "gptq");
    // Training half of the feedback plus the replay sample, capped at the default 512.
    let texts = manifest["calibration"]["texts"].as_u64().unwrap();
    assert!(texts > 100 && texts <= 512, "{texts} calibration texts");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_publishes_retrains_and_rolls_back_on_the_hub() {
    let hub = HubStandIn::start("127.0.0.1:0".parse().unwrap(), Faults { lfs_threshold: 10_000, ..Faults::default() })
        .await
        .unwrap();
    hub.create_repo("models/acme/sentiment");
    hub.create_repo("datasets/acme/feedback-logs");
    let endpoint = hub.endpoint();
    let dir = tmp("hub");
    let cli = {
        let endpoint = endpoint.clone();
        move |args: &[&str]| {
            let out = Command::new(TRAINER)
                .args(args)
                .env("HF_ENDPOINT", &endpoint)
                .env("HF_TOKEN", "hf_test_token")
                .env("HF_HOME", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("st-nightly-hf-home"))
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let d = dir.clone();
    let (v1, ck) = tokio::task::spawn_blocking(move || champion(&d, "v1")).await.unwrap();
    let (code, out) = cli(&[
        "publish",
        "--bundle",
        v1.to_str().unwrap(),
        "--to",
        "acme/sentiment",
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let files = hub.files("models/acme/sentiment");
    assert_eq!(files[MODEL_FILE], std::fs::read(v1.join(MODEL_FILE)).unwrap());
    assert!(files.contains_key("versions/v1/checkpoint/model.safetensors"));

    // Shifted feedback lands in the logs dataset, as the server's sync puts it there.
    let posts = texts("shifted.jsonl", 0, 1000);
    let (v1b, shard) = (v1.clone(), "data/instance-a/00000001.jsonl".to_string());
    let records = tokio::task::spawn_blocking(move || feedback(&v1b, &posts, "v1", |_| false)).await.unwrap();
    let client = HubClient::new(HubConfig {
        token: Some("hf_test_token".into()),
        token_source: TokenSource::Env,
        ..HubConfig::new(&endpoint)
    });
    tokio::task::spawn_blocking(move || {
        client.upload_files(
            &Repo::dataset("acme/feedback-logs".parse().unwrap()),
            &[AddFile { path: shard, content: records.into_bytes() }],
            "feedback",
        )
    })
    .await
    .unwrap()
    .unwrap();

    // This test checks the Hub path, not the recipe (the simulation and the tests above do): on
    // the tiny model the guard and gold sets (2,000 synthetic posts each) disagree by up to
    // 0.6 pp on how much a blend forgets, so its gate allows 1 pp on gold.
    let cfg = config(&dir, "acme/sentiment", "acme/feedback-logs");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("[gate]\n", "[gate]\nmax_gold_loss = 0.01\n");
    std::fs::write(&cfg, text).unwrap();
    let (code, out) = tokio::task::spawn_blocking({
        let cli = cli.clone();
        let cfg = cfg.clone();
        move || cli(&["nightly", "--config", cfg.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("nightly: promoted"), "{out}");
    let files = hub.files("models/acme/sentiment");
    let registry: Registry = serde_json::from_slice(&files["registry.json"]).unwrap();
    let new = registry.champion.clone().unwrap();
    assert_ne!(new, "v1");
    let manifest: serde_json::Value = serde_json::from_slice(&files[MANIFEST_FILE]).unwrap();
    assert_eq!(manifest["version"], new.as_str());
    assert_eq!(manifest["parent_version"], "v1");
    // A published challenger names the model repo its parent came from, never a local path.
    assert_eq!(manifest["source"]["repo_id"], "acme/sentiment");
    assert!(manifest["metrics"]["gold"]["macro_recall"].as_f64().is_some());
    // The model card is rewritten in the same commit: the new champion's results, its base.
    let card = String::from_utf8(files["README.md"].clone()).unwrap();
    assert!(card.contains("model-index:") && card.contains("base_model: \"tests/tiny\""), "{card}");
    assert!(card.contains(&format!("**Champion: `{new}`**")), "{card}");
    assert!(files.contains_key(&format!("versions/{new}/checkpoint/model.safetensors")));
    let reports: Vec<_> = std::fs::read_dir(dir.join("nightly-reports")).unwrap().collect();
    assert_eq!(reports.len(), 2, "one .md and one .json");
    // The report is in the model store too, listed in reports/index.json, without local paths.
    let index: serde_json::Value = serde_json::from_slice(&files["reports/index.json"]).unwrap();
    let published = index[0]["file"].as_str().unwrap();
    assert_eq!(
        (index[0]["outcome"].as_str(), index[0]["new_champion"].as_str()),
        (Some("promoted"), Some(new.as_str()))
    );
    let report = String::from_utf8(files[published].clone()).unwrap();
    let report_json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report_json["gate"]["promote"], true);
    assert_eq!(report_json["config"]["gold_test"], "gold.jsonl");
    assert!(!report.contains(dir.to_str().unwrap()) && !report.contains(root().to_str().unwrap()), "{report}");

    let (code, out) = cli(&["rollback", "--registry", "acme/sentiment", "--to", "v1", "--reason", "test"]);
    assert_eq!(code, Some(0), "{out}");
    let files = hub.files("models/acme/sentiment");
    assert_eq!(files[MODEL_FILE], std::fs::read(v1.join(MODEL_FILE)).unwrap());
    let registry: Registry = serde_json::from_slice(&files["registry.json"]).unwrap();
    assert_eq!((registry.champion.as_deref(), registry.versions.len()), (Some("v1"), 2));

    // Failures give one line and a non-zero exit; a failed nightly still writes its report.
    let (code, out) = cli(&["rollback", "--registry", "acme/sentiment", "--to", "nope"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("nope") && out.lines().count() == 1, "{out}");
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("acme/sentiment", "acme/missing")).unwrap();
    let (code, out) = cli(&["nightly", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no champion"), "{out}");
    assert_eq!(std::fs::read_dir(dir.join("nightly-reports")).unwrap().count(), 4);
    std::fs::remove_dir_all(dir).unwrap();
}
